"""Where exports live, and how one appears there all at once.

An export is a folder `<export_base>/<timestamp>/` (the layout TF Serving
watches) holding the SavedModel, any other formats and `export_info.json`.
It is written whole inside a hidden staging folder
`<export_base>/.incomplete-<pid>-<n>/` and renamed into place only when every
file is there, so a process killed mid-export leaves no numbered folder: a
Predictor, `export/best` and a model server never see half a model. The next
export under the same base deletes the staging folders of dead processes.
TF-free.
"""

import contextlib
import itertools
import json
import os
import shutil
from collections.abc import Iterator

from absl import logging

from estimator_cifar.rundir import lock

INFO_FILE = "export_info.json"   # Written last into every finished export.
STAGING_PREFIX = ".incomplete-"
_staging_count = itertools.count()


def finished_exports(export_base: str) -> list[str]:
  """The finished export folders under export_base, oldest first."""
  if not os.path.isdir(export_base):
    return []
  return [os.path.join(export_base, entry)
          for entry in sorted(os.listdir(export_base), key=_timestamp_order)
          if entry.isdigit()
          and os.path.isfile(os.path.join(export_base, entry, INFO_FILE))]


def read_info(export_path: str) -> dict:
  """The export's `export_info.json` ({} for an export written without one)."""
  try:
    with open(os.path.join(export_path, INFO_FILE)) as f:
      return json.load(f)
  except (OSError, ValueError):
    return {}


@contextlib.contextmanager
def staging(export_base: str) -> Iterator[str]:
  """A private folder to write one export into; deleted on any failure.

  Yields its path; `publish` moves the finished export out of it.
  """
  remove_abandoned(export_base)
  path = os.path.join(export_base,
                      f"{STAGING_PREFIX}{os.getpid()}-{next(_staging_count)}")
  os.makedirs(path)
  try:
    yield path
  finally:
    shutil.rmtree(path, ignore_errors=True)


def publish(staged_export: str, export_base: str, info: dict) -> str:
  """Writes `info` as INFO_FILE, then renames the export into export_base.

  Returns:
    The published path, `<export_base>/<timestamp>`.
  """
  with open(os.path.join(staged_export, INFO_FILE), "w") as f:
    json.dump(info, f, indent=2, sort_keys=True)
  stamp = int(os.path.basename(staged_export))
  while os.path.exists(os.path.join(export_base, str(stamp))):
    stamp += 1  # Two exports in one second: TF Serving needs distinct numbers.
  target = os.path.join(export_base, str(stamp))
  os.rename(staged_export, target)  # Atomic: one filesystem, one folder.
  return target


def remove_abandoned(export_base: str) -> None:
  """Deletes staging folders left by processes that no longer run."""
  if not os.path.isdir(export_base):
    return
  for entry in os.listdir(export_base):
    if not entry.startswith(STAGING_PREFIX):
      continue
    pid = _owner_pid(entry)
    if not (pid > 0 and lock.pid_exists(pid)):
      shutil.rmtree(os.path.join(export_base, entry), ignore_errors=True)
      logging.info("Removed the unfinished export %s of a stopped process.",
                   os.path.join(export_base, entry))


def _owner_pid(staging_name: str) -> int:
  pid = staging_name[len(STAGING_PREFIX):].split("-", 1)[0]
  return int(pid) if pid.isdigit() else 0



def _timestamp_order(entry: str) -> tuple[int, str]:
  return (int(entry) if entry.isdigit() else -1, entry)
