"""Download, verify and safely extract the CIFAR-10/100 binary archives.

`ensure_dataset(data_dir, dataset)` returns the extracted folder, doing only as
much work as needed: nothing when the folder is complete, extraction when the
archive is already in `data_dir` (e.g. copied there by hand on an offline
machine), else download + sha256 check + extraction.

Where the archive comes from, first match wins:
  1. the `url` argument (tests, one-off mirrors; `file://` works too);
  2. `$ESTIMATOR_CIFAR_MIRROR`, a base URL: `<base>/<archive name>`;
  3. the dataset authors' URL in data/cifar.py.
The expected checksum is the `sha256` argument if given, else the real one
below: a mirror must serve byte-identical archives.

Each step is atomic, so an interrupted run never looks complete: downloads go
to a temp file and extraction to a temp folder in `data_dir`, each renamed into
place once complete (a download only after its checksum matched). Only those
temp files are ever deleted: an archive found in `data_dir` (placed there by
hand, or by an earlier run) that fails its checksum is moved aside to
`<archive>.corrupt`, and an incomplete dataset folder with files in it to
`<folder>.incomplete`, each with a message saying where. Members that would
land outside the target (absolute paths, `..`, links pointing out, device
files) are refused before anything is written; `tarfile`'s `data` filter is
used as a second line of defence.
"""

import hashlib
import http.client
import os
import shutil
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request

from estimator_cifar.data import cifar
from estimator_cifar.data.cifar import DatasetSpec
from estimator_cifar.errors import ConfigError, DataError

MIRROR_ENV = "ESTIMATOR_CIFAR_MIRROR"
CHUNK_BYTES = 1 << 20
_PROGRESS_INTERVAL_S = 0.5


def ensure_dataset(data_dir: str, dataset: str, url: str | None = None,
                   timeout: float = 10.0, *, sha256: str | None = None) -> str:
  """Makes sure the extracted binary dataset is in `data_dir`.

  The readers need the extracted folder; this gets it there with no network
  use when the folder or the archive is already present, so offline machines
  work once the archive has been copied in by hand.

  Args:
    data_dir: Folder that holds (or will hold) the archive and its folder.
    dataset: "cifar10" or "cifar100".
    url: Where to fetch the archive; default: `$ESTIMATOR_CIFAR_MIRROR` or the
      dataset authors' URL.
    timeout: Socket timeout in seconds, so an unreachable host fails fast.
    sha256: Expected archive sha256; default: the real archive's.

  Returns:
    The path of the extracted folder, e.g. `<data_dir>/cifar-10-batches-bin`.

  Raises:
    ConfigError: `dataset` is not a known name.
    DataError: The download failed, the checksum did not match, or the
      archive is unsafe or lacks the expected files.
  """
  if dataset not in cifar.PUBLISHED:
    raise ConfigError(f"Unknown dataset {dataset!r}; choose one of "
                      f"{', '.join(sorted(cifar.PUBLISHED))}.")
  spec = cifar.DATASETS[dataset]
  folder = os.path.join(data_dir, spec.folder)
  if not _missing_files(folder, spec):
    return folder
  try:
    os.makedirs(data_dir, exist_ok=True)
  except OSError as e:
    raise DataError(f"Cannot create data_dir {data_dir}: {e}. Pass a "
                    "writable --data_dir.") from e
  archive = os.path.join(data_dir, spec.archive)
  expected = (sha256 or spec.sha256).lower()
  if os.path.exists(archive):
    _verify_placed(archive, expected, spec)
  else:
    mirror = os.environ.get(MIRROR_ENV)
    url = url or (mirror.rstrip("/") + "/" + spec.archive if mirror
                  else spec.url)
    _download(url, archive, spec, data_dir, timeout, expected)
  _extract(archive, data_dir, spec)
  return folder


def _missing_files(folder: str, spec: DatasetSpec) -> list[str]:
  """Names of the expected files that `folder` lacks."""
  return [f for f in spec.files if not os.path.isfile(os.path.join(folder, f))]


def _download(url: str, archive: str, spec: DatasetSpec, data_dir: str,
              timeout: float, expected: str) -> None:
  """Fetches `url` into a temp file beside `archive`; renames it if it verifies.

  The temp file is this package's own: deleted on any failure.
  """
  fd, tmp = tempfile.mkstemp(dir=data_dir, prefix=f".{spec.archive}.",
                             suffix=".part")
  done, line_open = 0, False
  try:
    with os.fdopen(fd, "wb") as out, \
        urllib.request.urlopen(url, timeout=timeout) as response:
      total = int(response.headers.get("Content-Length") or 0)
      last = time.monotonic()
      while chunk := response.read(CHUNK_BYTES):
        out.write(chunk)
        done += len(chunk)
        if time.monotonic() - last >= _PROGRESS_INTERVAL_S:
          last, line_open = time.monotonic(), True
          _draw_progress(spec.archive, done, total)
      _draw_progress(spec.archive, done, total)
      sys.stderr.write("\n")
      line_open = False
      if total and done != total:
        raise OSError(f"connection closed after {done} of {total} bytes")
    got = _sha256(tmp)
    if got != expected:
      raise DataError(
          f"Checksum mismatch for {archive} as downloaded from {url}: expected "
          f"sha256 {expected}, got {got}. The download was corrupted or the "
          f"mirror serves a different file; the download was deleted. Run "
          f"again to retry, or download {spec.url} by hand and put it at "
          f"{archive}.")
    os.replace(tmp, archive)
  except (OSError, http.client.HTTPException, ValueError) as e:
    if line_open:
      sys.stderr.write("\n")  # End the progress line before the error.
    if isinstance(e, urllib.error.HTTPError):
      reason = f"HTTP {e.code} {e.reason}"
    elif isinstance(e, urllib.error.URLError):
      reason = str(e.reason)
    else:
      reason = str(e) or type(e).__name__
    raise DataError(
        f"Could not download {url} ({reason}). If this machine is offline or "
        f"the host is unreachable, fetch {spec.archive} elsewhere (from "
        f"{spec.url}) and put it at {archive}, or put the extracted folder at "
        f"{os.path.join(data_dir, spec.folder)}, then run again; or set "
        f"{MIRROR_ENV} to the base URL of a mirror.") from e
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)


def _draw_progress(name: str, done: int, total: int) -> None:
  """Redraws the one plain-text progress line on stderr."""
  pct = f"{100.0 * done / total:5.1f}% " if total else ""
  size = f"{done / 1e6:.1f}/{total / 1e6:.1f}" if total else f"{done / 1e6:.1f}"
  sys.stderr.write(f"\rDownloading {name}: {pct}({size} MB)")
  sys.stderr.flush()


def _sha256(path: str) -> str:
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    while chunk := f.read(CHUNK_BYTES):
      digest.update(chunk)
  return digest.hexdigest()


def move_aside(path: str, suffix: str) -> str:
  """Renames `path` to `<path><suffix>` (then .1, .2, ...); returns the new path."""
  target, n = path + suffix, 0
  while os.path.exists(target):
    n += 1
    target = f"{path}{suffix}.{n}"
  os.replace(path, target)
  return target


def _verify_placed(archive: str, expected: str, spec: DatasetSpec) -> None:
  """Checks an archive found in data_dir; on a mismatch moves it aside, raises.

  It may be the user's own copy (an offline machine), so it is never deleted.
  """
  got = _sha256(archive)
  if got == expected:
    return
  moved = move_aside(archive, ".corrupt")
  raise DataError(
      f"Checksum mismatch for {archive}: expected sha256 {expected}, got "
      f"{got}. The archive is truncated or corrupted (an interrupted copy), or "
      f"another file; it was moved aside to {moved}, not deleted. Run again to "
      f"download it, or download {spec.url} by hand and put it at {archive}.")


def _within(path: str, root: str) -> bool:
  """Whether the normalized `path` is `root` or lies under it."""
  return os.path.commonpath([root, path]) == root


def _check_members(tar: tarfile.TarFile, target: str, archive: str,
                   spec: DatasetSpec) -> None:
  """Refuses the whole archive if any member would land outside `target`."""
  for m in tar.getmembers():
    dest = os.path.realpath(os.path.join(target, m.name))
    ok = not os.path.isabs(m.name) and _within(dest, target)
    if m.issym() or m.islnk():  # Symlinks resolve from their folder.
      base = os.path.dirname(dest) if m.issym() else target
      link = os.path.realpath(os.path.join(base, m.linkname))
      ok = ok and not os.path.isabs(m.linkname) and _within(link, target)
    elif not (m.isfile() or m.isdir()):  # Devices, fifos.
      ok = False
    if not ok:
      raise DataError(
          f"Refusing to extract {archive}: member {m.name!r} would be written "
          f"outside {os.path.dirname(target)} or is not a regular file. "
          f"Nothing was extracted. Delete {archive} and download the archive "
          f"again from {spec.url}.")


def _extract(archive: str, data_dir: str, spec: DatasetSpec) -> None:
  """Extracts into a temp folder in `data_dir`, then renames into place."""
  tmp = tempfile.mkdtemp(dir=data_dir, prefix=f".{spec.folder}.", suffix=".tmp")
  try:
    target = os.path.realpath(tmp)
    try:
      with tarfile.open(archive, "r:*") as tar:
        _check_members(tar, target, archive, spec)
        if hasattr(tarfile, "data_filter"):  # Python 3.11.4+ / 3.12+.
          tar.extractall(target, filter="data")
        else:
          tar.extractall(target)
    except (tarfile.TarError, EOFError, OSError) as e:
      raise DataError(f"Cannot extract {archive} ({e}): the archive is "
                      f"corrupt, or {data_dir} is full or not writable. Free "
                      f"space or delete the archive, then run again.") from e
    missing = _missing_files(os.path.join(target, spec.folder), spec)
    if missing:
      raise DataError(f"{archive} lacks {spec.folder}/{missing[0]} (and "
                      f"{len(missing) - 1} more); it is not the {spec.url} "
                      f"archive. Delete it and run again.")
    final = os.path.join(data_dir, spec.folder)
    if os.path.isdir(final) and not os.listdir(final):
      os.rmdir(final)
    elif os.path.exists(final):  # Incomplete, and maybe the user's: keep it.
      moved = move_aside(final, ".incomplete")
      print(f"{final} lacked files; moved it aside to {moved} and extracted "
            f"{archive} in its place.", file=sys.stderr)
    os.replace(os.path.join(target, spec.folder), final)
  finally:
    shutil.rmtree(tmp, ignore_errors=True)

