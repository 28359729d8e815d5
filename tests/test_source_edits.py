"""Edits to the package's files while a continuous-eval job runs (a git pull,
an edit in the same checkout) do not break the graphs it builds afterwards.

Real processes and real files: the evaluator runs from a copy of the package,
and the test rewrites modules of that copy once it is up and waiting.
"""

import math
import os
import shutil
import subprocess

from estimator_cifar.rundir import metrics_log
from tests import testutil

STEPS = 12
OVERRIDES = testutil.TINY + [f"train.steps={STEPS}", "eval.throttle_secs=0",
                             f"eval.timeout_secs={testutil.seconds(120):.0f}"]


def _edit(paths) -> None:
  """Puts a different function on every line where the running code has one.

  Each module gains, above its code, one small function per line it had: a
  reader of the file who trusts the old line numbers finds these instead.
  """
  for path in paths:
    text = path.read_text()
    stubs = "".join(f"def _edited_{i}(*args, **kwargs): raise RuntimeError('edited')\n"
                    for i in range(text.count("\n") + 1))
    path.write_text(stubs + text)


@testutil.multi_process
def test_an_evaluator_survives_edits_to_the_package_it_runs_from(tmp_path, cifar10_dir):
  checkout = tmp_path / "checkout"
  for name in ("estimator_cifar", "experiments"):
    shutil.copytree(os.path.join(testutil.REPO_ROOT, name), checkout / name,
                    ignore=shutil.ignore_patterns("__pycache__"))
  shutil.copy(os.path.join(testutil.REPO_ROOT, "setup.py"), checkout)  # A checkout.
  model_dir = str(tmp_path / "run")
  args = ["--experiment=resnet_sgd", f"--model_dir={model_dir}",
          f"--data_dir={cifar10_dir}", "--params_override=" + ",".join(OVERRIDES)]
  log_path = tmp_path / "evaluator.log"
  with open(log_path, "w") as log:
    evaluator = subprocess.Popen(
        testutil.cli_command("--mode=continuous_eval", *args), cwd=str(checkout),
        env=testutil.subprocess_env(PYTHONPATH=str(checkout)),
        stdout=log, stderr=subprocess.STDOUT)
  try:
    # Up and waiting for a checkpoint: its code is loaded, no graph built yet.
    testutil.wait_until(lambda: "Evaluating checkpoints of" in log_path.read_text()
                        or evaluator.poll() is not None, timeout=120,
                        message="the evaluator to start")
    assert evaluator.poll() is None, log_path.read_text()[-3000:]
    # What a researcher changes: the augmentations and the networks.
    package = checkout / "estimator_cifar"
    _edit([package / "data" / "augment.py", *(package / "model" / "nets").glob("*.py")])
    trainer = testutil.run_cli("--mode=train", *args, timeout=120)
    assert trainer.returncode == 0, trainer.stderr[-3000:]
    evaluator.wait(timeout=testutil.seconds(180))
  finally:
    if evaluator.poll() is None:
      evaluator.kill()
      evaluator.wait()
  output = log_path.read_text()
  assert evaluator.returncode == 0, output[-3000:]
  assert "Traceback" not in output
  rows = {row["checkpoint"]: row for row in metrics_log.read(model_dir)}
  last = rows[f"model.ckpt-{STEPS}"]
  assert last["global_step"] == STEPS and 0.0 <= last["accuracy"] <= 1.0
  assert math.isfinite(last["loss"])
