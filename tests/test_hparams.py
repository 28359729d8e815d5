"""Each train run's HParams summaries, read back through TensorBoard's loaders."""

import pytest
from tensorboard import context
from tensorboard.backend.event_processing import (data_provider,
                                                  event_accumulator,
                                                  plugin_event_multiplexer)
from tensorboard.plugins import base_plugin
from tensorboard.plugins.hparams import (api_pb2, backend_context, get_experiment,
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


# A sweep of three points; two have the same config.
RATES = {"lr=0.05": 0.05, "lr=0.05_again": 0.05, "lr=0.2": 0.2}


def _config(rate: float):
  return tiny_config("train.steps=2", f"optimizer.learning_rate={rate}",
                     "schedule.boundaries_epochs=[1,2]")


@pytest.fixture(scope="module")
def sweep_root(cifar10_dir, tmp_path_factory):
  root = tmp_path_factory.mktemp("sweep")
  for name, rate in RATES.items():
    modes.run(_config(rate), str(root / name), "train_and_eval", cifar10_dir)
  return root


def test_train_run_records_config_as_hparams(sweep_root):
  rate = RATES["lr=0.05"]
  content = hparams_content(str(sweep_root / "lr=0.05"))

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
  assert set(values) == set(hparams.flatten(_config(rate)))
  # No session group (the row takes the run's name) and no experiment summary
  # (TensorBoard builds the columns from every run's values).
  assert start.group_name == ""
  assert metadata.EXPERIMENT_TAG not in content


def hparams_tab(logdir: str) -> tuple[api_pb2.Experiment, list]:
  """(columns, rows) of the HParams tab for `logdir`, from the plugin's handlers."""
  mux = plugin_event_multiplexer.EventMultiplexer()
  mux.AddRunsFromDirectory(logdir)
  mux.Reload()
  tb = backend_context.Context(base_plugin.TBContext(
      logdir=logdir, multiplexer=mux,
      data_provider=data_provider.MultiplexerDataProvider(mux, logdir)))
  experiment = get_experiment.Handler(
      context.RequestContext(), tb, "", api_pb2.GetExperimentRequest()).run()
  request = api_pb2.ListSessionGroupsRequest(
      start_index=0, slice_size=10, allowed_statuses=[
          api_pb2.STATUS_UNKNOWN, api_pb2.STATUS_SUCCESS,
          api_pb2.STATUS_FAILURE, api_pb2.STATUS_RUNNING])
  groups = list_session_groups.Handler(context.RequestContext(), tb, "",
                                       request).run().session_groups
  return experiment, list(groups)


def test_a_sweep_of_three_shows_three_rows_swept_field_and_accuracy_first(
    sweep_root):
  root, runs = sweep_root, RATES
  experiment, groups = hparams_tab(str(root))
  assert experiment.hparam_infos[0].name == "optimizer.learning_rate"
  assert experiment.hparam_infos[0].differs
  assert not any(h.differs for h in experiment.hparam_infos[1:])
  first_metric = experiment.metric_infos[0].name
  assert (first_metric.tag, first_metric.group) == ("accuracy", "eval")

  # The two points with the same config stay two rows, named by their runs.
  assert sorted(g.name for g in groups) == sorted(runs)
  for group in groups:
    assert group.hparams["optimizer.learning_rate"].number_value == runs[group.name]
    assert group.hparams["model.name"].string_value == "tiny"
    metrics = {m.name.tag: m.value for m in group.metric_values}
    logged = metrics_log.read(str(root / group.name))[-1]
    assert metrics["accuracy"] == pytest.approx(logged["accuracy"])
    assert metrics["loss"] == pytest.approx(logged["loss"])
