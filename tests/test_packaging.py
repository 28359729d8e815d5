"""Installed like a library: experiments ship in the wheel, user folders add
experiments, tools name their missing extra."""

import ast
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile

import pytest

from estimator_cifar import config as config_lib
from estimator_cifar import experiment_files, extras
from tests.testutil import MULTI_PROCESS_TIMEOUT_SECS, REPO_ROOT, seconds

# A user's own experiment: a variant of a built-in, stated as its deltas.
USER_EXPERIMENT = textwrap.dedent('''\
    """My tiny variant of resnet_sgd."""

    from estimator_cifar import config as config_lib


    def get_config():
      cfg = config_lib.load_experiment("resnet_sgd")
      cfg.model.name = "tiny"
      return cfg
    ''')


def _python(*args, cwd, env=None, timeout=300):
  full_env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
  full_env.pop("PYTHONPATH", None)
  full_env.update(env or {})
  return subprocess.run([sys.executable, *args], cwd=cwd, env=full_env,
                        capture_output=True, text=True, timeout=seconds(timeout))


def _user_dir(tmp_path) -> str:
  folder = tmp_path / "my_experiments"
  folder.mkdir()
  (folder / "my_tiny.py").write_text(USER_EXPERIMENT)
  return str(folder)


def test_builtin_experiments_come_from_the_checkout():
  assert experiment_files.builtin_dir() == os.path.join(REPO_ROOT, "experiments")
  assert experiment_files.find("resnet_sgd") == os.path.join(
      REPO_ROOT, "experiments", "resnet_sgd.py")
  assert "__init__" not in config_lib.list_experiments()


@pytest.mark.slow
def test_user_folder_by_flag_and_environment(tmp_path):
  folder = _user_dir(tmp_path)
  env = {"PYTHONPATH": REPO_ROOT}
  by_flag = _python("-m", "estimator_cifar.run", "--list_experiments",
                    f"--experiments_dir={folder}", cwd=tmp_path, env=env)
  assert by_flag.returncode == 0, by_flag.stderr[-2000:]
  listed = dict(l.split(None, 1) for l in by_flag.stdout.splitlines())
  assert listed["my_tiny"] == "My tiny variant of resnet_sgd."
  assert "resnet_sgd" in listed  # The built-ins are still there.
  by_env = _python("-m", "estimator_cifar.run", "--experiment=my_tiny",
                   "--list_params", cwd=tmp_path,
                   env=dict(env, ESTIMATOR_CIFAR_EXPERIMENTS=folder))
  assert by_env.returncode == 0, by_env.stderr[-2000:]
  assert "model.name = 'tiny'" in by_env.stdout
  assert "model.depth = 20" in by_env.stdout  # From the base experiment.


def test_unknown_experiment_names_the_search_path(tmp_path, monkeypatch):
  folder = _user_dir(tmp_path)
  monkeypatch.setenv(experiment_files.ENV_VAR, folder)
  with pytest.raises(config_lib.ConfigError) as e:
    config_lib.load_experiment("my_tinny")
  assert "Did you mean my_tiny?" in str(e.value)
  assert folder in str(e.value) and "--experiments_dir" in str(e.value)


def test_missing_extra_is_named():
  with pytest.raises(extras.MissingExtraError) as e:
    extras.require("no_such_module_for_this_test", "tools/example.py")
  assert "pip install 'estimator_cifar[tools]'" in str(e.value)
  assert "tools/example.py" in str(e.value)


@pytest.mark.slow
def test_tool_without_matplotlib_says_which_extra(tmp_path):
  # `sys.modules[name] = None` makes `import name` fail as if not installed.
  code = ("import runpy, sys; sys.modules['matplotlib'] = None; "
          "sys.argv = ['plot_curves']; "
          "runpy.run_module('tools.plot_curves', run_name='__main__')")
  proc = _python("-c", code, cwd=tmp_path, env={"PYTHONPATH": REPO_ROOT},
                 timeout=120)
  assert proc.returncode == 2
  assert "Traceback" not in proc.stderr
  assert "error: python -m tools.plot_curves needs matplotlib" in proc.stderr
  assert "estimator_cifar[tools]" in proc.stderr


@pytest.mark.slow
@pytest.mark.timeout(MULTI_PROCESS_TIMEOUT_SECS)
def test_wheel_installs_and_runs_outside_the_repo(tmp_path):
  # Build from a copy, so the checkout gets no build/ or egg-info folders.
  source = tmp_path / "src"
  source.mkdir()
  for name in ("setup.py", "README.md"):
    shutil.copy(os.path.join(REPO_ROOT, name), source)
  for name in ("estimator_cifar", "experiments", "tools"):
    shutil.copytree(os.path.join(REPO_ROOT, name), source / name,
                    ignore=shutil.ignore_patterns("__pycache__"))
  wheels = tmp_path / "wheels"
  built = _python("-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                  "-q", "-w", str(wheels), str(source), cwd=tmp_path)
  assert built.returncode == 0, built.stderr[-3000:]
  (wheel,) = wheels.glob("estimator_cifar-*.whl")
  names = zipfile.ZipFile(wheel).namelist()
  assert "estimator_cifar/experiments/resnet_sgd.py" in names
  assert "estimator_cifar/tools/bench/gpu_check.sh" in names
  assert not any(n.startswith(("experiments/", "tools/")) for n in names)

  target = tmp_path / "site"
  installed = _python("-m", "pip", "install", "--no-deps", "-q", "--target",
                      str(target), str(wheel), cwd=tmp_path)
  assert installed.returncode == 0, installed.stderr[-3000:]
  elsewhere = tmp_path / "elsewhere"
  elsewhere.mkdir()
  env = {"PYTHONPATH": str(target)}
  where = _python("-c", "import estimator_cifar; print(estimator_cifar.__file__)",
                  cwd=elsewhere, env=env)
  assert where.stdout.strip().startswith(str(target)), where.stdout

  # The console script pip wrote, run with this interpreter.
  script = str(target / "bin" / "estimator-cifar")
  listed = _python(script, "--list_experiments", cwd=elsewhere, env=env)
  assert listed.returncode == 0, listed.stderr[-3000:]
  assert "resnet_sgd" in listed.stdout and "wrn28_10_sgd" in listed.stdout
  names = {line.split(None, 1)[0] for line in listed.stdout.splitlines()}
  shipped = {name[:-3] for name in os.listdir(os.path.join(REPO_ROOT, "experiments"))
             if name.endswith(".py") and name != "__init__.py"}
  assert names == shipped  # Every built-in experiment, from the wheel too.

  # The tools, from any folder: listed, and each runs by its installed name.
  tools = _python("-m", "estimator_cifar.tools", cwd=elsewhere, env=env)
  assert "python -m estimator_cifar.tools.sweep " in tools.stdout, tools.stderr[-3000:]
  helped = _python("-m", "estimator_cifar.tools.run_records", "--help",
                   cwd=elsewhere, env=env)
  assert helped.returncode == 0 and "MODEL_DIR" in helped.stdout, helped.stderr[-3000:]

  run = _python("-m", "estimator_cifar.run", "--experiment=resnet_sgd",
                "--model_dir=run", "--params_override=data.name=synthetic,"
                "model.name=tiny,train.steps=3,train.batch_size=8,"
                "eval.batch_size=50,data.synthetic_train_size=64,"
                "data.synthetic_eval_size=50,eval.export_best=false,"
                "eval.export_latest=0", cwd=elsewhere, env=env)
  assert run.returncode == 0, run.stderr[-3000:]
  assert "Done: resnet_sgd mode=train_and_eval step=3" in run.stdout
  assert (elsewhere / "run" / "config.json").is_file()
  table = _python("-m", "estimator_cifar.tools.results_table", "run",
                  cwd=elsewhere, env=env)
  assert table.returncode == 0 and "resnet_sgd" in table.stdout, table.stderr[-3000:]


def test_listing_reads_docstrings_without_running_files(tmp_path, monkeypatch):
  folder = tmp_path / "exps"
  folder.mkdir()
  (folder / "explodes.py").write_text('"""Would fail if run."""\nraise SystemExit(3)\n')
  (folder / "broken.py").write_text("def get_config(:\n")
  monkeypatch.setattr(experiment_files, "_added", [str(folder)])
  listed = config_lib.list_experiments()
  assert listed["explodes"] == "Would fail if run."
  assert listed["broken"].startswith("(cannot be read:")
  assert "resnet_sgd" in listed


def test_no_package_module_imports_the_package_itself():
  # `import estimator_cifar` inside the package closes a cycle through its
  # __init__; the version has a home of its own (estimator_cifar/version.py).
  package = os.path.join(REPO_ROOT, "estimator_cifar")
  offenders = []
  for folder, _, names in os.walk(package):
    for name in names:
      if name.endswith(".py"):
        path = os.path.join(folder, name)
        tree = ast.parse(open(path, encoding="utf-8").read(), path)
        if any(isinstance(node, ast.Import) and
               any(alias.name == "estimator_cifar" for alias in node.names)
               for node in ast.walk(tree)):
          offenders.append(os.path.relpath(path, REPO_ROOT))
  assert offenders == []
