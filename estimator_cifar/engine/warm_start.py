"""WarmStartSettings from `--warm_start_from` and the `warm_start.*` fields.

Everything is resolved here, before training, to an explicit list of variable
names checked against the checkpoint, so that a typo or a shape change fails
at start-up with a list of the culprits instead of deep inside the first
session run (or, worse, silently leaves a layer random):

1. The model's variables are found by building the network (and, with
   `ema.decay > 0`, its EMA shadows) once in a throwaway graph: weights,
   batch-norm moving statistics and shadows. The global step and optimizer
   slots are never warm-started (a fine-tuning run starts its own schedule).
2. `warm_start.include` / `exclude` are regexes matched at the start of a name
   (`re.match`, like a TF scope): `tiny/logits` excludes that layer's weights
   and their EMA shadows.
3. `warm_start.rename` maps checkpoint name prefixes to model name prefixes
   (`old_scope:resnet`), on `/` boundaries; the longest prefix wins.
4. Each kept variable must exist in the checkpoint with the same shape. An EMA
   shadow the checkpoint lacks (a source trained without EMA) starts from its
   weight's checkpoint value. Any other mismatch is a CheckpointError listing
   them all, unless `warm_start.ignore_missing`, which drops each with a log
   line.
5. The result is a `WarmStartSettings` whose `vars_to_warm_start` is a LIST of
   anchored names: a single regex string would only cover TRAINABLE_VARIABLES
   and so miss the moving statistics and the shadows.

`warm_start.values_npz` gives initial values from an `.npz` keyed by variable
name. The values are written once to a checkpoint under
`<model_dir>/warm_start/` (merged with `--warm_start_from`'s values where both
are given; the npz wins) and warm-started from there. That reuses the checks
above, keeps the arrays out of the GraphDef (a constant per variable would
bloat every graph.pbtxt and meta file by the model's size) and needs no hook in
model_fn. The `.npz` is read once with numpy; nothing is kept in memory after.

A model_dir that already has a checkpoint resumes from it: warm start is then
skipped with a log line (resume wins).
"""

import glob
import json
import os
import re

import numpy as np
import tensorflow as tf
from absl import logging

from estimator_cifar import paths
from estimator_cifar.config import ExperimentConfig
from estimator_cifar.errors import CheckpointError
from estimator_cifar.model import nets, optim
from estimator_cifar.model.keys import EMA_NAME
from estimator_cifar.rundir import checkpoint_check

v1 = tf.compat.v1

WARM_START_DIR = "warm_start"      # Under model_dir: the npz checkpoint, the record.
VALUES_PREFIX = "values"           # <model_dir>/warm_start/values.{index,data-*}
RECORD_FILE = "warm_start.json"    # What was warm-started from where.
EMA_SUFFIX = "/" + EMA_NAME


def find_checkpoint(path: str) -> str:
  """Returns the checkpoint prefix for a prefix or a directory (its newest).

  A directory without a `checkpoint` state file (copied by hand, say) falls
  back to the `*.index` file with the highest step number.

  Raises:
    CheckpointError: nothing that looks like a checkpoint is there, it is
      damaged, or the directory's state file names files elsewhere.
  """
  if os.path.isdir(path):
    checkpoint_check.check_state_file(path)
    latest = tf.train.latest_checkpoint(path)
    if latest and os.path.exists(latest + ".index"):
      return _whole(path, latest)
    prefixes = [p[:-len(".index")] for p in glob.glob(os.path.join(path, "*.index"))]
    if prefixes:
      return _whole(path, max(prefixes, key=checkpoint_check.step_of))
    raise CheckpointError(
        f"--warm_start_from={path} is a directory without checkpoints (no "
        "'checkpoint' file and no *.index files). Point it at a trained "
        "model_dir or at a checkpoint prefix such as "
        f"{os.path.join(path, 'model.ckpt-1000')}.")
  if os.path.exists(path + ".index"):
    return _whole(path, path)
  raise CheckpointError(
      f"--warm_start_from={path} is neither a directory nor a checkpoint prefix "
      f"({path}.index does not exist). Pass a model_dir (its newest checkpoint "
      "is used) or a prefix like runs/resnet_sgd/model.ckpt-64000, without the "
      ".index/.data suffix.")


def _whole(given: str, prefix: str) -> str:
  """`prefix` if it reads back whole; else a CheckpointError naming it."""
  problem = checkpoint_check.checkpoint_problem(prefix)
  if problem is not None:
    raise CheckpointError(
        f"--warm_start_from={given}: the checkpoint is damaged: {problem}. "
        "Pass an earlier checkpoint prefix of that run (such as "
        f"{os.path.join(os.path.dirname(prefix), 'model.ckpt-1000')}), or a "
        "model_dir whose newest checkpoint is whole.")
  return prefix


def model_variables(cfg: ExperimentConfig, num_classes: int) -> dict[str, list[int]]:
  """Names and shapes of every variable a warm start may set, in graph order.

  Built in a throwaway graph from the same `nets.build` and EMA naming that
  model_fn uses, so the names are the ones training will create.
  """
  with tf.Graph().as_default():
    # Only names and shapes matter here; a seed keeps the initializers legal
    # when a seeded run has switched TF's op determinism on.
    v1.set_random_seed(0)
    size = cfg.data.image_size
    images = v1.placeholder(tf.float32, [None, size, size, 3])
    nets.build(cfg.model, num_classes)(images, True)
    if cfg.ema.decay > 0:
      v1.train.ExponentialMovingAverage(cfg.ema.decay, name=EMA_NAME).apply(
          v1.trainable_variables())
    return {v.op.name: v.shape.as_list() for v in v1.global_variables()}


def select(names, include: list[str], exclude: list[str]) -> list[str]:
  """Names matched by some include and by no exclude scope pattern.

  Patterns follow `optim.in_scopes`: from the start of the name, ending on a
  scope boundary, so `tiny/bn` covers `tiny/bn/gamma` but not `tiny/bn2/gamma`.
  """
  return [n for n in names if optim.in_scopes(n, include) and
          not (exclude and optim.in_scopes(n, exclude))]


def checkpoint_name(name: str, rename: dict[str, str]) -> str:
  """The checkpoint name for model variable `name` under `rename`.

  `rename` maps checkpoint prefixes to model prefixes (`old:new`); the longest
  model prefix that matches `name` on a `/` boundary is replaced.
  """
  best = None
  for old, new in rename.items():
    if (name == new or name.startswith(new + "/")) and \
        (best is None or len(new) > len(best[1])):
      best = (old, new)
  return name if best is None else best[0] + name[len(best[1]):]


def plan(cfg: ExperimentConfig, variables: dict[str, list[int]],
         checkpoint: str | None, npz_values: dict[str, np.ndarray] | None = None
         ) -> tuple[dict[str, tuple[str, str]], list[str]]:
  """Decides, for each selected variable, where its initial value comes from.

  Args:
    cfg: the config (its `warm_start` section is used).
    variables: the model's variable names and shapes (`model_variables`).
    checkpoint: a checkpoint prefix, or None for npz values only.
    npz_values: arrays keyed by model variable name, or None.

  Returns:
    (sources, dropped): sources maps a model variable name to ("npz", name) or
    ("checkpoint", checkpoint tensor name); dropped lists one line per variable
    skipped under `ignore_missing`.

  Raises:
    CheckpointError: variables missing or of another shape without
      `warm_start.ignore_missing`, a `.npz` key naming no model variable, or
      nothing left to warm-start.
  """
  ws = cfg.warm_start
  chosen = select(variables, ws.include, ws.exclude)
  available = dict(tf.train.list_variables(checkpoint)) if checkpoint else {}
  npz_values = npz_values or {}
  problems, sources = [], {}
  for key in sorted(set(npz_values) - set(variables)):
    problems.append(f"{key} (in {ws.values_npz}: no such model variable)")
  for name in chosen:
    shape = variables[name]
    if name in npz_values:
      got = list(npz_values[name].shape)
      if got == shape:
        sources[name] = ("npz", name)
      else:
        problems.append(f"{name} (model {shape}, {ws.values_npz} {got})")
      continue
    if not checkpoint:
      continue  # npz only: variables it does not name keep their initializers.
    prev = checkpoint_name(name, ws.rename)
    if name.endswith(EMA_SUFFIX) and prev not in available:
      # A source trained without EMA: the shadow starts at the weight's value.
      weight = checkpoint_name(name[:-len(EMA_SUFFIX)], ws.rename)
      prev = weight if weight in available else prev
    if prev not in available:
      problems.append(f"{name} (checkpoint has no {prev})" if prev != name
                      else f"{name} (not in checkpoint)")
    elif list(available[prev]) != shape:
      problems.append(f"{name} (model {shape}, checkpoint {prev} "
                      f"{list(available[prev])})")
    else:
      sources[name] = ("checkpoint", prev)
  unused = [f"{old}:{new}" for old, new in ws.rename.items()
            if not any(n == new or n.startswith(new + "/") for n in chosen)]
  if unused:
    logging.warning("warm_start.rename entries that match no selected model "
                    "variable: %s", ", ".join(unused))
  where = checkpoint or ws.values_npz
  if problems and not ws.ignore_missing:
    raise CheckpointError(
        f"Warm start from {where}: {len(problems)} variable(s) cannot be "
        f"initialized: {'; '.join(problems)}. Fix warm_start.include/exclude "
        "(e.g. warm_start.exclude=[<model>/logits] when the number of classes "
        "changes) or warm_start.rename, or pass warm_start.ignore_missing=true "
        "to keep their fresh initial values.")
  for line in problems:
    logging.info("Warm start: skipping %s (warm_start.ignore_missing).", line)
  if not sources:
    raise CheckpointError(
        f"Warm start from {where} would set no variable: warm_start.include="
        f"{ws.include} and exclude={ws.exclude} leave nothing that the source "
        f"has. Model variables are named like {next(iter(variables), '?')}.")
  return sources, problems


def load_npz(path: str) -> dict[str, np.ndarray]:
  """Arrays of an `.npz` keyed by variable name (a trailing `:0` is dropped)."""
  if not os.path.isfile(path):
    raise CheckpointError(f"warm_start.values_npz={path} does not exist. Write "
                          "one with numpy.savez(path, **{'tiny/conv/kernel': "
                          "array, ...}) keyed by model variable names.")
  with np.load(path) as npz:
    return {re.sub(r":\d+$", "", k): npz[k] for k in npz.files}


def write_values(prefix: str, sources: dict[str, tuple[str, str]],
                 checkpoint: str | None, npz_values: dict[str, np.ndarray]) -> None:
  """Writes one checkpoint at `prefix` holding every planned initial value.

  Eager `SaveV2`: the arrays go to the checkpoint files, never into a graph.
  """
  reader = tf.train.load_checkpoint(checkpoint) if checkpoint else None
  names = sorted(sources)
  tensors = [npz_values[prev] if kind == "npz" else reader.get_tensor(prev)
             for kind, prev in (sources[n] for n in names)]
  os.makedirs(os.path.dirname(prefix), exist_ok=True)
  tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names,
                    shape_and_slices=[""] * len(names),
                    tensors=[tf.constant(t, tf.float32) for t in tensors])


def settings(cfg: ExperimentConfig, warm_start_from: str | None, model_dir: str,
             num_classes: int) -> tf.estimator.WarmStartSettings | None:
  """The WarmStartSettings for a train run, or None for no warm start.

  None when neither `warm_start_from` nor `warm_start.values_npz` is given, or
  when `model_dir` already has a checkpoint (the run resumes instead). Writes
  `<model_dir>/warm_start/warm_start.json` recording what came from where.

  Raises:
    CheckpointError: see `find_checkpoint`, `plan` and `load_npz`.
  """
  npz_path = paths.expand(cfg.warm_start.values_npz)
  if not warm_start_from and not npz_path:
    return None
  existing = tf.train.latest_checkpoint(model_dir) if os.path.isdir(model_dir) else None
  if existing:
    logging.info("Warm start skipped: %s already has checkpoint %s, so the run "
                 "resumes from it (resume wins over --warm_start_from and "
                 "warm_start.values_npz).", model_dir, existing)
    return None
  checkpoint = find_checkpoint(warm_start_from) if warm_start_from else None
  npz_values = load_npz(npz_path) if npz_path else {}
  variables = model_variables(cfg, num_classes)
  sources, dropped = plan(cfg, variables, checkpoint, npz_values)
  if npz_values:
    source = os.path.join(model_dir, WARM_START_DIR, VALUES_PREFIX)
    write_values(source, sources, checkpoint, npz_values)
    renames = {}
  else:
    source = checkpoint
    renames = {n: prev for n, (_, prev) in sources.items() if prev != n}
  _write_record(model_dir, {
      "warm_start_from": checkpoint, "values_npz": npz_path or None,
      "initialized_from": source,
      "variables": {n: f"{kind}:{prev}" for n, (kind, prev) in sources.items()},
      "skipped": dropped})
  logging.info("Warm-starting %d of %d variables from %s (%d from the "
               "checkpoint, %d from %s, %d renamed, %d skipped).",
               len(sources), len(variables), checkpoint or npz_path,
               sum(k == "checkpoint" for k, _ in sources.values()),
               sum(k == "npz" for k, _ in sources.values()), npz_path or "npz",
               len(renames), len(dropped))
  # Anchored names: get_collection(scope=...) is a re.match prefix match, so a
  # bare `tiny/conv/kernel` would also pick up `tiny/conv/kernel/Momentum`.
  return tf.estimator.WarmStartSettings(
      ckpt_to_initialize_from=source,
      vars_to_warm_start=[re.escape(n) + r":\d+$" for n in sources],
      var_name_to_prev_var_name=renames)


def _write_record(model_dir: str, record: dict) -> None:
  folder = os.path.join(model_dir, WARM_START_DIR)
  os.makedirs(folder, exist_ok=True)
  with open(os.path.join(folder, RECORD_FILE), "w") as f:
    json.dump(record, f, indent=2, sort_keys=True)
    f.write("\n")
