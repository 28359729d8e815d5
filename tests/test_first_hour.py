"""A new user's first hour: help, listing, config files, typos and the messages
that answer them, each through the command line in a real process."""

import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import textwrap

import pytest

from estimator_cifar import config as config_lib
from estimator_cifar import config_help
from estimator_cifar.data import cifar, cifar_binary, fake
from estimator_cifar.engine import precision
from estimator_cifar.errors import ConfigError
from tests.testutil import (REPO_ROOT, TINY, cli_command, run_cli, run_tool,
                            seconds, subprocess_env)

README = os.path.join(REPO_ROOT, "README.md")
GUIDE = os.path.join(REPO_ROOT, "docs", "guide.md")


def error_of(proc) -> str:
  """The one `error:` paragraph of a process that exited 2."""
  assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
  assert "Traceback" not in proc.stderr
  lines = [l for l in proc.stderr.splitlines() if l.startswith("error: ")]
  assert len(lines) == 1, proc.stderr[-2000:]
  return lines[0]


@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_help_exits_0_with_a_users_summary(flag):
  proc = run_cli(flag, timeout=60)
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert proc.stdout.startswith("Train, evaluate, export and predict")
  assert "--experiment" in proc.stdout and "--config_file" in proc.stdout
  assert "MODES[" not in proc.stdout and "run.py:" not in proc.stdout


def test_list_params_without_experiment_shows_type_choices_and_meaning():
  proc = run_cli("--list_params", "--params_override=train.steps=7", timeout=60)
  assert proc.returncode == 0, proc.stderr[-2000:]
  lines = proc.stdout.splitlines()
  assert len(lines) == len(config_lib.all_keys(config_lib.ExperimentConfig()))
  assert "train.steps = 7  (int) how long to train, in steps" in proc.stdout
  assert re.search(r"^optimizer\.name = 'momentum'  \(str: sgd \| momentum .*\| "
                   r"ftrl\) the optimizer$", proc.stdout, re.M), proc.stdout


def test_every_field_has_one_meaning():
  fields = set(config_lib.all_keys(config_lib.ExperimentConfig()))
  assert not fields - set(config_help.MEANINGS), (
      "add a line to config_help.MEANINGS for", fields - set(config_help.MEANINGS))
  assert not set(config_help.MEANINGS) - fields


def test_a_typo_in_an_experiment_file_names_the_field(tmp_path):
  path = tmp_path / "deep.py"
  path.write_text(textwrap.dedent('''\
      """ResNet-56, mistyped."""
      from estimator_cifar import config as config_lib

      def get_config():
        cfg = config_lib.load_experiment("resnet_sgd")
        cfg.model.dept = 56
        return cfg
      '''))
  line = error_of(run_cli(f"--experiment={path}", "--list_params", timeout=60))
  assert str(path) in line and "model.dept" in line
  assert "Did you mean model.depth" in line


def test_setting_an_unknown_field_in_python_raises():
  cfg = config_lib.ExperimentConfig()
  with pytest.raises(ConfigError, match="Did you mean train.steps"):
    cfg.train.stpes = 5
  cfg.train.steps = 5  # Known fields still set.
  assert cfg.train.steps == 5


def test_every_section_refuses_an_unknown_field():
  cfg = config_lib.ExperimentConfig()
  sections = [cfg] + [getattr(cfg, f.name) for f in dataclasses.fields(cfg)
                      if dataclasses.is_dataclass(getattr(cfg, f.name))]
  for section in sections:
    with pytest.raises(ConfigError, match="Unknown config field"):
      section.no_such_field = 1


def test_a_bad_choice_suggests_the_closest_and_names_the_override():
  line = error_of(run_cli("--experiment=resnet_adam",
                          "--params_override=optimizer.name=adamm",
                          "--list_params", timeout=60))
  assert "Did you mean adam?" in line and "came from --params_override" in line
  assert "--params_override=optimizer.name=adam" in line
  assert "Fix the experiment" not in line


def test_a_missing_experiment_file_says_that_file_is_missing(tmp_path):
  line = error_of(run_cli("--experiment=my_experiments/missing.py", timeout=60))
  assert "my_experiments/missing.py does not exist" in line
  assert "experiments/" not in line.split("does not exist")[1]


def test_a_recorded_config_json_is_an_experiment(tmp_path):
  cfg = config_lib.resolve("resnet_sgd", ["model.name=tiny,train.steps=7"])
  recorded = tmp_path / "config.json"
  recorded.write_text(cfg.to_json())
  proc = run_cli(f"--experiment={recorded}", "--list_params",
                 "--params_override=train.batch_size=8", timeout=60)
  assert proc.returncode == 0, proc.stderr[-2000:]
  for line in ("name = 'resnet_sgd'", "model.name = 'tiny'",
               "train.steps = 7", "train.batch_size = 8"):
    assert line in proc.stdout, line


def test_config_file_comes_before_overrides_and_is_checked(tmp_path):
  path = tmp_path / "run.json"
  path.write_text(json.dumps({"train": {"steps": 9, "batch_size": 32},
                              "optimizer": {"name": "adam"}}))
  proc = run_cli("--experiment=resnet_sgd", f"--config_file={path}",
                 "--params_override=train.batch_size=16", "--list_params",
                 timeout=60)
  assert proc.returncode == 0, proc.stderr[-2000:]
  for line in ("train.steps = 9", "train.batch_size = 16",
               "optimizer.name = 'adam'"):
    assert line in proc.stdout, line
  path.write_text(json.dumps({"train": {"stpes": 9}}))
  line = error_of(run_cli("--experiment=resnet_sgd", f"--config_file={path}",
                          "--list_params", timeout=60))
  assert "train.stpes" in line and str(path) in line and "train.steps" in line
  path.write_text(json.dumps({"__class__": {"name": "x"}}))
  line = error_of(run_cli("--experiment=resnet_sgd", f"--config_file={path}",
                          "--list_params", timeout=60))
  assert "Unknown config key '__class__.name'" in line
  path.write_text(json.dumps({"train": {"steps": "many"}}))
  line = error_of(run_cli("--experiment=resnet_sgd", f"--config_file={path}",
                          "--list_params", timeout=60))
  assert "train.steps" in line and "an integer" in line


def test_a_yaml_config_file_names_the_package_it_needs(tmp_path):
  path = tmp_path / "run.yaml"
  path.write_text("train:\n  steps: 9\n")
  line = error_of(run_cli("--experiment=resnet_sgd", f"--config_file={path}",
                          timeout=60))
  assert "PyYAML" in line and "JSON" in line


def test_eval_of_a_missing_model_dir_says_the_run_does_not_exist(tmp_path):
  missing = tmp_path / "nowhere"
  line = error_of(run_cli("--mode=eval", f"--model_dir={missing}", timeout=60))
  assert f"--model_dir={missing} does not exist" in line
  assert "--experiment=NAME" in line  # How to train there, not a demand.
  assert not missing.exists()


def test_data_dir_may_name_the_extracted_folder(tmp_path):
  fake.write_cifar10(str(tmp_path), train_per_file=2, test=4)
  layout = cifar.DATASETS["cifar10"]
  folder = os.path.join(str(tmp_path), layout.folder)
  assert cifar_binary.locate(folder, layout, download=False) == folder


def test_a_closed_stdout_ends_quietly():
  proc = subprocess.Popen(cli_command("--list_params"), cwd=REPO_ROOT,
                          env=subprocess_env(), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
  proc.stdout.close()  # Gone before the program writes, as `| head` would be.
  err = proc.stderr.read()
  assert proc.wait(timeout=60) == 128 + signal.SIGPIPE
  assert err == "", err


def test_readme_says_to_use_the_venv():
  text = open(README).read()
  first = re.search(r"^(\S*python) -m estimator_cifar\.run", text, re.M)
  assert first.group(1) == ".venv/bin/python", first.group(0)
  assert ". .venv/bin/activate" in text


def test_documents_say_what_continuous_eval_skips():
  throttle = config_lib.EvalConfig().throttle_secs
  for path in (README, GUIDE):
    text = " ".join(open(path).read().split())
    assert "each new checkpoint once" not in text
    assert f"eval.throttle_secs` ({throttle}" in text or \
        f"`eval.throttle_secs` ({throttle}" in text or \
        f"({throttle} s by default" in text, path


def test_run_info_statuses_are_all_documented():
  from estimator_cifar.rundir import run_record
  row = next(l for l in open(GUIDE) if l.startswith("| `status` |"))
  for status in (run_record.RUNNING, run_record.FINISHED, run_record.STOPPED_NAN,
                 run_record.FAILED, run_record.INTERRUPTED, run_record.KILLED,
                 run_record.PREEMPTED):
    assert f"`{status}`" in row, status


def documented_eval_tags() -> set[str]:
  """The tags in the guide's eval tag table (`per_class_accuracy/<class>`)."""
  text = open(GUIDE).read()
  table = text.split("Eval, in `<model_dir>/eval`")[1].split("\n\n")[1]
  return {tag for row in table.splitlines()[2:]
          for tag in re.findall(r"`([^`]+)`", row.split(" | ")[0])}


# The README's smoke run, what a new user types first, on fewer random images.
SMOKE = ["--experiment=resnet_sgd",
         "--params_override=data.name=synthetic,model.name=tiny,train.steps=20",
         "--params_override=data.synthetic_train_size=2560,"
         "data.synthetic_eval_size=500"]


@pytest.mark.slow
def test_a_20_step_run_is_short_and_quiet_and_verbose_shows_all(tmp_path):
  model_dir = str(tmp_path / "smoke")
  # A new user's first run: an empty cache, so train.precision=auto measures
  # on a CPU with bfloat16 instructions, in one line of its own.
  proc = run_cli(*SMOKE, f"--model_dir={model_dir}",
                 env={"XDG_CACHE_HOME": str(tmp_path / "cache")})
  assert proc.returncode == 0, proc.stderr[-3000:]
  lines = (proc.stdout + proc.stderr).splitlines()
  assert len(lines) <= 15, "\n".join(lines)
  measured = (bool(precision.cpu_info()[1] & set(precision.BFLOAT16_FLAGS))
              and not precision.gpu_capabilities())
  assert proc.stderr.count("train.precision=auto -> ") == 1
  assert ("cached in" in proc.stderr) == measured
  assert [l for l in proc.stdout.splitlines() if "Done:" in l] == [
      l for l in lines if "Done:" in l] and len(proc.stdout.splitlines()) == 1
  config_line = next(l for l in proc.stderr.splitlines() if "Config: " in l)
  assert "Config: resnet_sgd with model.name='tiny', data.name='synthetic', " \
      in config_line and "train.steps=20" in config_line, config_line
  # train_and_eval exports too, so its deprecation warnings would show here.
  for noise in ("Final config", "deprecat", "np.ndarray", "Calling model_fn"):
    assert noise not in proc.stderr, noise
  loud = run_cli("--mode=export", f"--model_dir={model_dir}", "--verbose")
  assert loud.returncode == 0, loud.stderr[-3000:]
  assert "deprecated" in loud.stderr and "Calling model_fn" in loud.stderr
  assert eval_tags(model_dir) <= documented_eval_tags()


def eval_tags(model_dir: str) -> set[str]:
  """The tags of the run's eval events, one per class as `<class>`."""
  import tensorflow as tf
  tags = set()
  for path in tf.io.gfile.glob(os.path.join(model_dir, "eval", "events.*")):
    for event in tf.compat.v1.train.summary_iterator(path):
      tags.update(re.sub(r"^per_class_accuracy/.*", "per_class_accuracy/<class>",
                         v.tag) for v in event.summary.value)
  assert "per_class_accuracy/<class>" in tags and "ece" in tags, tags
  return tags


@pytest.mark.slow
def test_an_experiment_file_adds_a_network(tmp_path):
  path = tmp_path / "mine.py"
  path.write_text(textwrap.dedent('''\
      """Tiny recipe with a network of its own."""
      import tensorflow as tf
      from estimator_cifar import config as config_lib
      from estimator_cifar.model.nets import register_network


      @register_network("mynet")
      def mynet(cfg, num_classes):
        def fn(images, training):
          x = tf.compat.v1.layers.conv2d(images, 4, 3, activation=tf.nn.relu)
          return tf.compat.v1.layers.dense(tf.reduce_mean(x, [1, 2]),
                                           num_classes)
        return fn


      def get_config():
        cfg = config_lib.load_experiment("resnet_sgd")
        cfg.model.name = "mynet"
        return cfg
      '''))
  model_dir = str(tmp_path / "run")
  overrides = [o for o in TINY if not o.startswith("model.name")]
  proc = run_cli(f"--experiment={path}", f"--model_dir={model_dir}",
                 "--mode=train", "--params_override=" + ",".join(
                     overrides + ["data.name=synthetic", "train.steps=2",
                                  "data.synthetic_train_size=64",
                                  "data.synthetic_eval_size=32"]))
  assert proc.returncode == 0, proc.stderr[-3000:]
  import tensorflow as tf
  names = [n for n, _ in tf.train.list_variables(model_dir)]
  assert any(n.startswith("mynet/") for n in names), names
  # A reading mode registers it again from the same file.
  proc = run_cli(f"--experiment={path}", f"--model_dir={model_dir}",
                 "--mode=eval")
  assert proc.returncode == 0 and "Done: mine mode=eval step=2" in proc.stdout, \
      proc.stderr[-3000:]
  # Unknown without the file that registers it.
  line = error_of(run_cli("--experiment=resnet_sgd", "--list_params",
                          "--params_override=model.name=mynet", timeout=60))
  assert "model.name='mynet'" in line


def test_registering_a_network_needs_no_tensorflow():
  code = ("import sys; from estimator_cifar.model.nets import register_network; "
          "from estimator_cifar import config; "
          "print('tensorflow' in sys.modules)")
  proc = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT,
                        env=subprocess_env(), capture_output=True, text=True,
                        timeout=seconds(60))
  assert proc.stdout.strip() == "False", proc.stderr[-2000:]


def guide_blocks_after(marker: str, count: int) -> list[str]:
  """The first `count` fenced blocks of the guide after the line `marker`."""
  text = open(GUIDE).read()
  rest = text[text.index(marker):]
  return re.findall(r"^```\w+\n(.*?)^```$", rest, re.S | re.M)[:count]


@pytest.mark.slow
def test_the_guides_warm_start_export_and_predict_walk_through(tmp_path):
  """The guide's fixture commands, as typed, print the figures it shows."""
  def here(text: str) -> str:
    return text.replace("/tmp/easy", f"{tmp_path}/easy").replace(
        "/tmp/runs", f"{tmp_path}/runs")
  train, export, serve, pngs, predict = guide_blocks_after(
      "On the easy 200/50-image fixture dataset", 5)
  assert export.startswith("python -m estimator_cifar.run --mode=export")
  env = subprocess_env(
      PATH=os.pathsep.join([os.path.dirname(sys.executable), os.environ["PATH"]]))

  def bash(script: str):
    proc = subprocess.run(["bash", "-ec", here(script)], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=seconds(300))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout

  done = re.compile(r"Done: .*?step=(\d+) test: accuracy=([\d.]+)")
  assert done.findall(bash(train)) == done.findall(train)
  bash(export)
  accuracy = re.search(r"# ([\d.]+)$", serve, re.M).group(1)
  assert bash(f"python - <<'EOF'\n{serve}EOF\n").strip() == accuracy
  bash(f"python - <<'EOF'\n{pngs}EOF\n")
  command, table = re.match(r"(.*?[^\\]\n)(.*)", predict, re.S).groups()
  assert bash(command).split() == here(table).split()


def test_a_typo_in_a_sweeps_grid_names_the_closest_field(tmp_path):
  proc = run_tool("sweep", "--experiment=resnet_sgd", f"--root={tmp_path}",
                  "--grid", "optimizer.learning_rat=0.1,0.2", "--dry_run")
  message = error_of(proc)
  assert "'optimizer.learning_rat'" in message and \
      "Did you mean optimizer.learning_rate" in message, message


@pytest.mark.parametrize("name", ["train", "evaluate"])
def test_the_readme_gives_each_api_functions_whole_signature(name):
  import inspect

  import estimator_cifar
  documented = re.search(rf"^- `({name}\(.*?\))`", open(README).read(),
                         re.S | re.M).group(1)
  params = inspect.signature(getattr(estimator_cifar, name)).parameters.values()
  actual = ", ".join(p.name if p.default is inspect.Parameter.empty else
                     f"{p.name}={p.default!r}".replace("'", '"') for p in params)
  assert " ".join(documented.split()) == f"{name}({actual})"


def test_the_readmes_own_experiment_file_validates(tmp_path):
  text = open(README).read()
  code = re.search(r"\*\*Adding one\*\*.*?```python\n(.*?)```", text, re.S).group(1)
  (tmp_path / "resnet56_cosine.py").write_text(code)
  proc = run_cli(f"--experiment={tmp_path}/resnet56_cosine.py", "--list_params",
                 timeout=60)
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert "model.depth = 56" in proc.stdout
  assert "schedule.name = 'cosine'" in proc.stdout


@pytest.mark.slow
def test_a_tflite_export_keeps_the_converters_op_summary_off_the_console(
    tmp_path):
  model_dir = str(tmp_path / "smoke")
  assert run_cli(*SMOKE, f"--model_dir={model_dir}",
                 "--params_override=eval.export_best=false,eval.export_latest=0"
                 ).returncode == 0
  proc = run_cli("--mode=export", f"--model_dir={model_dir}",
                 "--params_override=export.formats=[tflite]")
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert proc.stdout.startswith("Exported: "), proc.stdout
  assert "non-converted ops" not in proc.stderr, proc.stderr[-3000:]
  assert "(f32: " not in proc.stderr, proc.stderr[-3000:]
