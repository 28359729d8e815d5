"""Temperature scaling (Guo et al. 2017) and the calibration figures, in numpy.

One temperature T > 0 divides the logits before the softmax: T > 1 softens
over-confident probabilities, T < 1 sharpens under-confident ones; the argmax,
and so the predicted class and the accuracy, never changes. `fit` picks the T
that minimises the mean negative log-likelihood on held-out logits.

The expected calibration error here bins exactly as the streaming eval metric
does (model/eval_metrics.py): ECE_BINS equal-width bins of the top-class
probability, bin b holding the confidences in (b / M, (b + 1) / M].
`bin_statistics` gives each bin's three figures, the rows of the eval metric
`reliability`: its share of the examples, and the means over all examples of
correct * in_bin and of confidence * in_bin. ECE is the sum over bins of the
gap between the last two.

Imports no TensorFlow: tools and the model_dir readers use it as well.
"""

import math

import numpy as np

ECE_BINS = 15
# Rows of bin_statistics (and of the `reliability` eval metric).
SHARE_ROW, CORRECT_ROW, CONFIDENCE_ROW = 0, 1, 2
# fit searches log T between these, to this relative precision in T.
MIN_TEMPERATURE, MAX_TEMPERATURE = 0.05, 20.0
FIT_TOLERANCE = 1e-4
_GOLDEN = (math.sqrt(5) - 1) / 2  # The golden section's smaller share.


def softmax(logits, temperature: float = 1.0) -> np.ndarray:
  """softmax(logits / temperature) over the last axis, in float64."""
  scaled = _checked_logits(logits) / _checked_temperature(temperature)
  scaled -= scaled.max(axis=-1, keepdims=True)
  exp = np.exp(scaled)
  return exp / exp.sum(axis=-1, keepdims=True)


def nll(logits, labels, temperature: float = 1.0) -> float:
  """Mean negative log-likelihood of `labels` under softmax(logits / T).

  Args:
    logits: [N, C] finite logits.
    labels: [N] int labels in [0, C).
    temperature: T > 0.

  Raises:
    ValueError: empty or mismatched arrays, non-finite logits, labels out of
      range, or a temperature that is not a positive finite number.
  """
  logits, labels = _checked(logits, labels)
  return _nll(logits, labels, _checked_temperature(temperature))


def ece(logits, labels, temperature: float = 1.0,
        num_bins: int = ECE_BINS) -> float:
  """Expected calibration error of softmax(logits / T), as the eval metric bins.

  Raises:
    ValueError: as `nll`.
  """
  return ece_of_bins(bin_statistics(logits, labels, temperature, num_bins))


def bin_statistics(logits, labels, temperature: float = 1.0,
                   num_bins: int = ECE_BINS) -> np.ndarray:
  """The [3, num_bins] bin figures of softmax(logits / T); see the module doc.

  Raises:
    ValueError: as `nll`.
  """
  logits, labels = _checked(logits, labels)
  probabilities = softmax(logits, temperature)
  confidence = probabilities.max(axis=1)
  correct = (probabilities.argmax(axis=1) == labels).astype(np.float64)
  bins = np.clip(np.ceil(confidence * num_bins).astype(np.int64) - 1, 0,
                 num_bins - 1)
  in_bin = np.eye(num_bins)[bins]
  return np.stack([in_bin, in_bin * correct[:, None],
                   in_bin * confidence[:, None]], axis=0).mean(axis=1)


def ece_of_bins(statistics) -> float:
  """ECE from bin figures [3, M] (bin_statistics, or the eval metric's)."""
  statistics = np.asarray(statistics, np.float64)
  return float(np.abs(statistics[CORRECT_ROW] -
                      statistics[CONFIDENCE_ROW]).sum())


def ece_floor(statistics, images: int, draws: int = 10000,
              seed: int = 0) -> tuple[float, float]:
  """(median, 90th percentile) of the ECE that a perfectly calibrated model
  would show on `images` images with these bins' confidences.

  Each bin keeps its images and mean confidence (`statistics` [3, M], as
  `bin_statistics` gives them); its correct count is drawn binomially at that
  confidence. The ECE of a few hundred images sits above 0 from this noise
  alone, so a measured ECE near the floor says nothing more can be shown.
  """
  statistics = np.asarray(statistics, np.float64)
  share = statistics[SHARE_ROW]
  counts = np.round(share * images).astype(np.int64)
  confidence = np.divide(statistics[CONFIDENCE_ROW], share,
                         out=np.zeros_like(share), where=share > 0)
  rng = np.random.default_rng(seed)
  correct = rng.binomial(counts, np.clip(confidence, 0, 1), [draws, len(counts)])
  gaps = np.abs(correct / np.maximum(counts, 1) - confidence)
  eces = (gaps * counts / max(counts.sum(), 1)).sum(axis=1)
  return float(np.median(eces)), float(np.percentile(eces, 90))


def fit(logits, labels) -> float:
  """The temperature that minimises the mean NLL of softmax(logits / T).

  A golden-section search on log T over [MIN_TEMPERATURE, MAX_TEMPERATURE]:
  the NLL is convex in 1 / T (a log-sum-exp of linear functions minus a
  linear one), so it has one minimum along log T and the search finds it. A
  fit at a bound means the logits carry (almost) no information about the
  labels, or are (almost) always right.

  Args:
    logits: [N, C] finite logits of held-out examples (a validation split).
    labels: [N] their int labels.

  Returns:
    T, to a relative precision of about FIT_TOLERANCE.

  Raises:
    ValueError: as `nll`.
  """
  logits, labels = _checked(logits, labels)

  def loss(log_t):
    return _nll(logits, labels, math.exp(log_t))

  low, high = math.log(MIN_TEMPERATURE), math.log(MAX_TEMPERATURE)
  inner_low = high - _GOLDEN * (high - low)
  inner_high = low + _GOLDEN * (high - low)
  loss_low, loss_high = loss(inner_low), loss(inner_high)
  # An interval of width w in log T is one of relative width ~w in T.
  while high - low > FIT_TOLERANCE:
    if loss_low <= loss_high:
      high, inner_high, loss_high = inner_high, inner_low, loss_low
      inner_low = high - _GOLDEN * (high - low)
      loss_low = loss(inner_low)
    else:
      low, inner_low, loss_low = inner_low, inner_high, loss_high
      inner_high = low + _GOLDEN * (high - low)
      loss_high = loss(inner_high)
  return math.exp((low + high) / 2)


def _nll(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
  """Mean NLL of checked inputs, by a log-sum-exp that cannot overflow."""
  scaled = logits / temperature
  top = scaled.max(axis=1, keepdims=True)
  log_norm = top[:, 0] + np.log(np.exp(scaled - top).sum(axis=1))
  return float(np.mean(log_norm - scaled[np.arange(len(labels)), labels]))


def _checked(logits, labels) -> tuple[np.ndarray, np.ndarray]:
  """(float64 logits [N, C], int64 labels [N]) or a ValueError naming the fault."""
  logits = _checked_logits(logits)
  labels = np.asarray(labels)
  if labels.ndim != 1 or len(labels) != len(logits):
    raise ValueError(f"labels must be one per row of logits: got labels of "
                     f"shape {labels.shape} for logits of shape {logits.shape}.")
  if not np.issubdtype(labels.dtype, np.integer):
    raise ValueError(f"labels must be integers, not {labels.dtype}.")
  if labels.min() < 0 or labels.max() >= logits.shape[1]:
    raise ValueError(f"labels must lie in [0, {logits.shape[1]}) for "
                     f"{logits.shape[1]} classes: got {labels.min()} to "
                     f"{labels.max()}.")
  return logits, labels.astype(np.int64)


def _checked_logits(logits) -> np.ndarray:
  """Float64 logits [N, C] with N, C >= 1 and every value finite."""
  logits = np.array(logits, dtype=np.float64)
  if logits.ndim != 2 or logits.shape[0] == 0 or logits.shape[1] == 0:
    raise ValueError(f"logits must be a non-empty [examples, classes] array, "
                     f"not of shape {logits.shape}.")
  finite = np.isfinite(logits)
  if not finite.all():
    raise ValueError(f"logits must be finite: {finite.size - finite.sum()} of "
                     f"{finite.size} values are NaN or infinite.")
  return logits


def _checked_temperature(temperature: float) -> float:
  """`temperature` as a float, or a ValueError if it is not positive and finite."""
  if not (math.isfinite(temperature) and temperature > 0):
    raise ValueError(f"temperature must be a positive finite number, not "
                     f"{temperature!r}.")
  return float(temperature)
