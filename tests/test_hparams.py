"""Each train run's HParams summaries, read back through TensorBoard's loaders."""

import pytest
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.plugins.hparams import api_pb2, metadata

from estimator_cifar.engine import hparams, modes
from tests.testutil import tiny_config


def hparams_content(model_dir: str) -> dict[str, bytes]:
  """tag -> plugin content of the HParams summaries in model_dir's events."""
  loader = event_accumulator.EventAccumulator(
      model_dir, size_guidance={event_accumulator.TENSORS: 0})
  loader.Reload()
  return loader.PluginTagToContent(metadata.PLUGIN_NAME)


@pytest.mark.parametrize("rate", [0.05, 0.2])
def test_train_run_records_config_as_hparams(rate, cifar10_dir, tmp_path):
  model_dir = str(tmp_path / f"lr{rate}")
  cfg = tiny_config("train.steps=2", f"optimizer.learning_rate={rate}",
                    "schedule.boundaries_epochs=[1,2]")
  modes.run(cfg, model_dir, "train", cifar10_dir)
  content = hparams_content(model_dir)

  start = metadata.parse_session_start_info_plugin_data(
      content[metadata.SESSION_START_INFO_TAG])
  values = {name: value.WhichOneof("kind") and getattr(value, value.WhichOneof("kind"))
            for name, value in start.hparams.items()}
  assert values["optimizer.learning_rate"] == pytest.approx(rate)
  assert values["model.name"] == "tiny"
  assert values["train.steps"] == 2
  assert values["ema.eval_with_ema"] is False
  assert values["schedule.boundaries_epochs"] == "[1.0, 2.0]"
  assert values["name"] == "resnet_sgd" and "description" not in values
  assert set(values) == set(hparams.flatten(cfg))

  experiment = metadata.parse_experiment_plugin_data(
      content[metadata.EXPERIMENT_TAG])
  metrics = {(m.name.group, m.name.tag) for m in experiment.metric_infos}
  assert {("eval", "accuracy"), ("eval", "loss")} <= metrics
  assert {h.name for h in experiment.hparam_infos} == set(values)
  assert all(isinstance(h, api_pb2.HParamInfo) for h in experiment.hparam_infos)
