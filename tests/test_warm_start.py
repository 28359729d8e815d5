"""Warm start: variable selection, renames, missing variables, npz values, and
the point of it all: a warm-started run is good after 20 steps."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from estimator_cifar.engine import modes, warm_start
from estimator_cifar.errors import CheckpointError
from tests.testutil import CONSTANT_LR, tiny_config

# Constant learning rate and no exporters: the runs here are about weights.
FAST = ["optimizer.learning_rate=0.4", *CONSTANT_LR, "eval.batch_size=50",
        "eval.export_best=false", "eval.export_latest=0",
        "summary.save_steps=1000", "log.every_steps=1000", "train.seed=1"]
SOURCE_STEPS = 600


def save(prefix: str, values: dict) -> str:
  """Writes a name-keyed checkpoint of float32 `values`; returns the prefix."""
  os.makedirs(os.path.dirname(prefix), exist_ok=True)
  names = sorted(values)
  tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names,
                    shape_and_slices=[""] * len(names),
                    tensors=[tf.constant(values[n], tf.float32) for n in names])
  return prefix


def first_checkpoint(model_dir: str):
  """The values a run started from: Estimator saves model.ckpt-0 first."""
  return tf.train.load_checkpoint(os.path.join(model_dir, "model.ckpt-0"))


@pytest.fixture(scope="module")
def source(tmp_path_factory, cifar10_dir):
  """A tiny CIFAR-10 model trained to high accuracy: (model_dir, accuracy)."""
  model_dir = str(tmp_path_factory.mktemp("source"))
  result = modes.run(tiny_config(*FAST, f"train.steps={SOURCE_STEPS}"),
                         model_dir, "train_and_eval", cifar10_dir)
  return model_dir, float(result["accuracy"])


@pytest.fixture(scope="module")
def tiny_vars():
  return warm_start.model_variables(tiny_config(), 10)


# ------------------------------------------------------------ pure resolution

def test_model_variables_include_bn_statistics_and_ema_shadows(tiny_vars):
  assert tiny_vars["tiny/conv/kernel"] == [3, 3, 3, 8]
  assert tiny_vars["tiny/logits/kernel"] == [16, 10]
  assert "tiny/bn/moving_mean" in tiny_vars            # Not trainable.
  assert "tiny/logits/kernel/ExponentialMovingAverage" in tiny_vars
  assert "global_step" not in tiny_vars
  no_ema = warm_start.model_variables(tiny_config("ema.decay=0"), 10)
  assert not any(n.endswith("ExponentialMovingAverage") for n in no_ema)


def test_include_exclude_match_scopes_and_regexes(tiny_vars):
  names = list(tiny_vars)
  kept = warm_start.select(names, [".*"], ["tiny/logits"])
  assert "tiny/conv/kernel" in kept and "tiny/bn/moving_variance" in kept
  assert not any(n.startswith("tiny/logits") for n in kept)  # Shadows too.
  assert warm_start.select(names, ["tiny/bn"], []) == [
      n for n in names if n.startswith("tiny/bn/")]
  assert warm_start.select(names, [r".*/kernel$"], []) == [
      "tiny/conv/kernel", "tiny/conv2/kernel", "tiny/logits/kernel"]


def test_rename_maps_checkpoint_prefixes_to_model_prefixes():
  rename = {"old_net": "tiny", "old_net/head": "tiny/logits"}
  assert warm_start.checkpoint_name("tiny/conv/kernel", rename) == "old_net/conv/kernel"
  # The longest model prefix wins.
  assert warm_start.checkpoint_name("tiny/logits/bias", rename) == "old_net/head/bias"
  # Prefixes match on '/' boundaries only.
  assert warm_start.checkpoint_name("tinyx/a", rename) == "tinyx/a"


def test_find_checkpoint_prefix_directory_and_errors(tmp_path):
  older = save(str(tmp_path / "run" / "model.ckpt-5"), {"a": np.zeros(1)})
  newer = save(str(tmp_path / "run" / "model.ckpt-40"), {"a": np.ones(1)})
  assert warm_start.find_checkpoint(older) == older
  # No `checkpoint` state file: the highest step wins.
  assert warm_start.find_checkpoint(str(tmp_path / "run")) == newer
  tf.compat.v1.train.update_checkpoint_state(str(tmp_path / "run"), older)
  assert warm_start.find_checkpoint(str(tmp_path / "run")) == older
  with pytest.raises(CheckpointError, match="without checkpoints"):
    warm_start.find_checkpoint(str(tmp_path))
  with pytest.raises(CheckpointError, match="model.ckpt-7.index does not exist"):
    warm_start.find_checkpoint(str(tmp_path / "run" / "model.ckpt-7"))


def _checkpoint_like(tiny_vars, tmp_path, drop=(), reshape=None, rename=None):
  values = {n: np.full(s, 0.5) for n, s in tiny_vars.items() if n not in drop}
  values.update(reshape or {})
  if rename:
    values = {n.replace(rename[0], rename[1], 1): v for n, v in values.items()}
  return save(str(tmp_path / "src" / "model.ckpt-1"), values)


def test_ignore_missing_false_lists_every_mismatch(tiny_vars, tmp_path):
  ckpt = _checkpoint_like(tiny_vars, tmp_path, drop=["tiny/bn/moving_mean"],
                          reshape={"tiny/logits/kernel": np.zeros([16, 100])})
  with pytest.raises(CheckpointError) as e:
    warm_start.plan(tiny_config(), tiny_vars, ckpt)
  message = str(e.value)
  assert "tiny/bn/moving_mean (not in checkpoint)" in message
  assert "tiny/logits/kernel (model [16, 10], checkpoint tiny/logits/kernel [16, 100])" in message
  assert "warm_start.ignore_missing=true" in message


def test_ignore_missing_true_drops_them_and_keeps_the_rest(tiny_vars, tmp_path):
  ckpt = _checkpoint_like(tiny_vars, tmp_path, drop=["tiny/bn/moving_mean"],
                          reshape={"tiny/logits/kernel": np.zeros([16, 100])})
  sources, dropped = warm_start.plan(
      tiny_config("warm_start.ignore_missing=true"), tiny_vars, ckpt)
  assert "tiny/bn/moving_mean" not in sources
  assert "tiny/logits/kernel" not in sources
  assert sources["tiny/bn/moving_variance"] == ("checkpoint", "tiny/bn/moving_variance")
  assert len(dropped) == 2
  # Each variable is judged on its own: this shadow's entry has the right shape.
  assert "tiny/logits/kernel/ExponentialMovingAverage" in sources


def test_ema_shadows_missing_from_source_start_at_its_weights(tiny_vars, tmp_path):
  shadows = [n for n in tiny_vars if n.endswith("/ExponentialMovingAverage")]
  ckpt = _checkpoint_like(tiny_vars, tmp_path, drop=shadows)
  sources, dropped = warm_start.plan(tiny_config(), tiny_vars, ckpt)
  assert not dropped
  assert sources["tiny/conv/kernel/ExponentialMovingAverage"] == (
      "checkpoint", "tiny/conv/kernel")


def test_rename_resolves_against_the_checkpoint(tiny_vars, tmp_path):
  ckpt = _checkpoint_like(tiny_vars, tmp_path, rename=("tiny/", "old_net/"))
  with pytest.raises(CheckpointError, match=r"tiny/bn/gamma \(checkpoint has no old_net/gamma\)"):
    warm_start.plan(tiny_config("warm_start.rename=old_net:tiny/bn"), tiny_vars, ckpt)
  sources, _ = warm_start.plan(tiny_config("warm_start.rename=old_net:tiny"),
                               tiny_vars, ckpt)
  assert sources["tiny/bn/moving_mean"] == ("checkpoint", "old_net/bn/moving_mean")
  assert len(sources) == len(tiny_vars)


def test_npz_only_sets_named_variables_and_rejects_unknown_keys(tiny_vars, tmp_path):
  path = str(tmp_path / "values.npz")
  np.savez(path, **{"tiny/conv/kernel:0": np.ones([3, 3, 3, 8])})
  cfg = tiny_config(f"warm_start.values_npz={path}")
  sources, _ = warm_start.plan(cfg, tiny_vars, None, warm_start.load_npz(path))
  assert sources == {"tiny/conv/kernel": ("npz", "tiny/conv/kernel")}
  np.savez(path, **{"tiny/conv/kernal": np.ones([3, 3, 3, 8])})
  with pytest.raises(CheckpointError, match="tiny/conv/kernal .*no such model variable"):
    warm_start.plan(cfg, tiny_vars, None, warm_start.load_npz(path))


def test_include_matching_nothing_is_an_error(tiny_vars, tmp_path):
  ckpt = _checkpoint_like(tiny_vars, tmp_path)
  with pytest.raises(CheckpointError, match="would set no variable"):
    warm_start.plan(tiny_config("warm_start.include=resnet/"), tiny_vars, ckpt)


def test_skipped_when_model_dir_has_a_checkpoint(tmp_path, caplog):
  model_dir = str(tmp_path / "run")
  ckpt = save(os.path.join(model_dir, "model.ckpt-3"), {"a": np.zeros(1)})
  tf.compat.v1.train.update_checkpoint_state(model_dir, ckpt)
  with caplog.at_level("INFO"):
    assert warm_start.settings(tiny_config(), "/does/not/exist", model_dir, 10) is None
  assert "resume wins" in caplog.text


# -------------------------------------------------------------- end to end

@pytest.mark.slow
def test_warm_started_20_steps_near_source_far_above_cold(source, tmp_path, cifar10_dir):
  model_dir, source_accuracy = source
  cfg = tiny_config(*FAST, "train.steps=20")
  warm = modes.run(cfg, str(tmp_path / "warm"), "train_and_eval", cifar10_dir,
                       warm_start_from=model_dir)
  cold = modes.run(tiny_config(*FAST, "train.steps=20"), str(tmp_path / "cold"),
                       "train_and_eval", cifar10_dir)
  print(f"source {source_accuracy:.2f} ({SOURCE_STEPS} steps), warm 20 steps "
        f"{warm['accuracy']:.2f}, cold 20 steps {cold['accuracy']:.2f}")
  assert source_accuracy >= 0.8
  assert warm["accuracy"] >= source_accuracy - 0.1
  assert warm["accuracy"] >= cold["accuracy"] + 0.4


@pytest.mark.slow
def test_warm_start_leaves_optimizer_slots_and_global_step_alone(
    source, tmp_path, cifar10_dir):
  """Weights come from the source; the momentum and the step count start
  afresh, as in a new run (the source's would replay its last updates)."""
  model_dir, _ = source
  src = tf.train.load_checkpoint(model_dir)
  slots = [n for n in src.get_variable_to_shape_map() if n.endswith("/Momentum")]
  assert len(slots) == 8 and all(np.any(src.get_tensor(n)) for n in slots)
  assert src.get_tensor("global_step") == SOURCE_STEPS
  target = str(tmp_path / "target")
  modes.run(tiny_config(*FAST, "train.steps=1"), target, "train", cifar10_dir,
            warm_start_from=model_dir)
  got = first_checkpoint(target)
  assert got.get_tensor("global_step") == 0
  for name in slots:
    assert not np.any(got.get_tensor(name)), name
  np.testing.assert_array_equal(got.get_tensor("tiny/conv2/kernel"),
                                src.get_tensor("tiny/conv2/kernel"))
  record = json.load(open(os.path.join(target, "warm_start", "warm_start.json")))
  assert not [n for n in record["variables"]
              if n.endswith("/Momentum") or n == "global_step"]


@pytest.mark.slow
def test_fine_tune_cifar10_to_cifar100_without_the_head(source, tmp_path, cifar100_dir):
  """BN statistics and EMA shadows come along; the new head keeps its init."""
  model_dir, _ = source
  target = str(tmp_path / "c100")
  base = FAST + ["data.name=cifar100", "train.steps=1"]
  with pytest.raises(CheckpointError, match=r"tiny/logits/kernel \(model \[16, 100\]"):
    modes.run(tiny_config(*base), target, "train", cifar100_dir,
                  warm_start_from=model_dir)
  modes.run(tiny_config(*base, "warm_start.exclude=[tiny/logits]"), target,
                "train", cifar100_dir, warm_start_from=model_dir)
  src, got = tf.train.load_checkpoint(model_dir), first_checkpoint(target)
  for name in ("tiny/conv/kernel", "tiny/bn/moving_mean", "tiny/bn/moving_variance",
               "tiny/bn/gamma/ExponentialMovingAverage"):
    np.testing.assert_array_equal(got.get_tensor(name), src.get_tensor(name), name)
  assert got.get_tensor("tiny/logits/kernel").shape == (16, 100)
  assert not np.any(got.get_tensor("tiny/logits/bias"))  # Fresh zeros init.
  record = json.load(open(os.path.join(target, "warm_start", "warm_start.json")))
  assert "tiny/logits/kernel" not in record["variables"]


@pytest.mark.slow
def test_renamed_checkpoint_plus_npz_values(source, tmp_path, cifar10_dir):
  """npz values win over the (renamed) checkpoint; neither goes into the graph."""
  model_dir, _ = source
  reader = tf.train.load_checkpoint(model_dir)
  renamed = save(str(tmp_path / "old" / "model.ckpt-9"), {
      n.replace("tiny/", "old_net/", 1): reader.get_tensor(n)
      for n in reader.get_variable_to_shape_map() if n.startswith("tiny/")})
  npz = str(tmp_path / "values.npz")
  np.savez(npz, **{"tiny/conv/kernel": np.full([3, 3, 3, 8], 1234.5),
                   "tiny/bn/moving_mean": np.arange(8.0)})
  target = str(tmp_path / "target")
  modes.run(tiny_config(*FAST, "train.steps=1", "warm_start.rename=old_net:tiny",
                            f"warm_start.values_npz={npz}"),
                target, "train", cifar10_dir, warm_start_from=renamed)
  got = first_checkpoint(target)
  np.testing.assert_array_equal(got.get_tensor("tiny/conv/kernel"), 1234.5)
  np.testing.assert_array_equal(got.get_tensor("tiny/bn/moving_mean"), np.arange(8.0))
  np.testing.assert_array_equal(got.get_tensor("tiny/logits/kernel"),
                                reader.get_tensor("tiny/logits/kernel"))
  np.testing.assert_array_equal(
      got.get_tensor("tiny/logits/kernel/ExponentialMovingAverage"),
      reader.get_tensor("tiny/logits/kernel/ExponentialMovingAverage"))
  with open(os.path.join(target, "graph.pbtxt")) as f:
    assert "1234.5" not in f.read()
  assert os.path.exists(os.path.join(target, "warm_start", "values.index"))
