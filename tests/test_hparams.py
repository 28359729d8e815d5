"""Each train run's HParams summaries, read back through TensorBoard's loaders."""

import pytest
from tensorboard import context
from tensorboard.backend.event_processing import (data_provider,
                                                  event_accumulator,
                                                  plugin_event_multiplexer)
from tensorboard.plugins import base_plugin
from tensorboard.plugins.hparams import (api_pb2, backend_context,
                                         list_session_groups, metadata)

from estimator_cifar.engine import hparams, modes
from estimator_cifar.rundir import metrics_log
from tests.testutil import tiny_config

# Every test here trains (or runs the CLI on) a tiny model.
pytestmark = pytest.mark.slow


def hparams_content(model_dir: str) -> dict[str, bytes]:
  """tag -> plugin content of the HParams summaries in model_dir's events."""
  loader = event_accumulator.EventAccumulator(
      model_dir, size_guidance={event_accumulator.TENSORS: 0})
  loader.Reload()
  return loader.PluginTagToContent(metadata.PLUGIN_NAME)


def test_train_run_records_config_as_hparams(cifar10_dir, tmp_path):
  rate = 0.05
  model_dir = str(tmp_path / "run")
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


def session_groups(logdir: str) -> list:
  """What the HParams tab lists for `logdir`, from the plugin's own handler."""
  mux = plugin_event_multiplexer.EventMultiplexer()
  mux.AddRunsFromDirectory(logdir)
  mux.Reload()
  tb = base_plugin.TBContext(
      logdir=logdir, multiplexer=mux,
      data_provider=data_provider.MultiplexerDataProvider(mux, logdir))
  request = api_pb2.ListSessionGroupsRequest(
      start_index=0, slice_size=10, allowed_statuses=[
          api_pb2.STATUS_UNKNOWN, api_pb2.STATUS_SUCCESS,
          api_pb2.STATUS_FAILURE, api_pb2.STATUS_RUNNING])
  return list(list_session_groups.Handler(
      context.RequestContext(), backend_context.Context(tb), "",
      request).run().session_groups)


def test_a_sweep_compares_in_the_hparams_tab(cifar10_dir, tmp_path):
  root = tmp_path / "sweep"
  for rate in (0.05, 0.2):
    modes.run(tiny_config("train.steps=2", f"optimizer.learning_rate={rate}"),
              str(root / f"lr{rate}"), "train_and_eval", cifar10_dir)
  groups = session_groups(str(root))
  by_rate = {g.hparams["optimizer.learning_rate"].number_value: g
             for g in groups}
  assert sorted(by_rate) == [0.05, 0.2]
  for rate, group in by_rate.items():
    assert group.hparams["model.name"].string_value == "tiny"
    metrics = {m.name.tag: m.value for m in group.metric_values}
    logged = metrics_log.read(str(root / f"lr{rate}"))[-1]
    assert metrics["accuracy"] == pytest.approx(logged["accuracy"])
    assert metrics["loss"] == pytest.approx(logged["loss"])
