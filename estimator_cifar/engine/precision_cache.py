"""The per-machine store of `train.precision=auto`'s measured decisions.

`<cache dir>/precision.json` (paths.cache_dir: $XDG_CACHE_HOME/estimator_cifar,
by default ~/.cache/estimator_cifar) holds one entry per key: the CPU model, a
digest of its flags, the TensorFlow version, the network and the batch size,
everything that changes which precision runs faster. A home directory shared
by several machines keeps each machine's entries side by side; a key that
differs in anything (another CPU, a TensorFlow upgrade) simply misses, and is
measured again. A file that cannot be read or parsed counts as empty and is
replaced by the next decision.
"""

import hashlib
import json
import os
from typing import Any

from absl import logging

from estimator_cifar import paths

CACHE_FILE = "precision.json"
FORMAT_VERSION = 1


def path() -> str:
  return os.path.join(paths.cache_dir(), CACHE_FILE)


def key(cpu_model: str, flags: set[str], tensorflow_version: str,
        network: str, batch_size: int) -> dict[str, Any]:
  """What a decision holds for; flags as a digest (they run to 100+ words)."""
  digest = hashlib.sha256(" ".join(sorted(flags)).encode()).hexdigest()[:16]
  return {"cpu_model": cpu_model, "cpu_flags_sha256": digest,
          "tensorflow": tensorflow_version, "network": network,
          "batch_size": batch_size}


def lookup(wanted: dict[str, Any]) -> dict[str, Any] | None:
  """The decision stored under `wanted`, or None (absent, or unreadable file)."""
  for entry in _entries():
    if entry.get("key") == wanted:
      return entry.get("decision")
  return None


def store(wanted: dict[str, Any], decision: dict[str, Any]) -> bool:
  """Adds or replaces the entry for `wanted`; False (and a warning) where the
  cache cannot be written: the run goes on, and the next one measures again."""
  entries = [e for e in _entries(quiet=True) if e.get("key") != wanted]
  entries.append({"key": wanted, "decision": decision})
  file_path = path()
  tmp = f"{file_path}.{os.getpid()}.tmp"
  try:
    os.makedirs(os.path.dirname(file_path), exist_ok=True)
    with open(tmp, "w", encoding="utf-8") as f:
      json.dump({"format_version": FORMAT_VERSION, "entries": entries}, f,
                indent=1)
    os.replace(tmp, file_path)  # Readers see the old file or the new one.
  except OSError as e:
    logging.warning("Could not write the precision cache %s: %s", file_path, e)
    if os.path.exists(tmp):
      os.remove(tmp)
    return False
  return True


def _entries(quiet: bool = False) -> list[dict[str, Any]]:
  """The file's entries; none if it is unreadable, with one log line unless
  `quiet` (the lookup before has said it)."""
  file_path = path()
  try:
    with open(file_path, encoding="utf-8") as f:
      content = json.load(f)
  except FileNotFoundError:
    return []
  except (OSError, ValueError) as e:
    if not quiet:
      logging.info("Ignoring the precision cache %s (%s): measuring again.",
                   file_path, e)
    return []
  entries = content.get("entries") if isinstance(content, dict) else None
  if (not isinstance(content, dict)
      or content.get("format_version") != FORMAT_VERSION
      or not isinstance(entries, list)):
    if not quiet:
      logging.info("Ignoring the precision cache %s (not format version %d): "
                   "measuring again.", file_path, FORMAT_VERSION)
    return []
  return [e for e in entries if isinstance(e, dict)]
