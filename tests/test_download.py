"""Tests for estimator_cifar.data.download, against a local server only."""

import functools
import hashlib
import http.server
import io
import os
import pathlib
import socket
import tarfile
import threading
import time

import pytest

from estimator_cifar.data import cifar, download
from estimator_cifar.errors import ConfigError, DataError
from tests.testutil import closed_port, run_tool, seconds

ARCHIVE = cifar.CIFAR10.archive
FOLDER = cifar.CIFAR10.folder
RECORD_BYTES = cifar.CIFAR10.record_bytes


def _record(label: int) -> bytes:
  return bytes([label]) + bytes([label * 7 % 256]) * (RECORD_BYTES - 1)


def _fake_files() -> dict[str, bytes]:
  """A CIFAR-10 layout with two records per batch."""
  files = {f"{FOLDER}/{name}": _record(i) + _record(i + 1)
           for i, name in enumerate(cifar.CIFAR10.files)
           if name.endswith(".bin")}
  files[f"{FOLDER}/batches.meta.txt"] = b"airplane\nautomobile\n"
  return files


def _make_archive(path: pathlib.Path, extra=()) -> str:
  """Writes a fake cifar-10 tar.gz (plus `extra` TarInfos last); its sha256."""
  path.parent.mkdir(parents=True, exist_ok=True)
  with tarfile.open(path, "w:gz") as tar:
    for name, data in _fake_files().items():
      info = tarfile.TarInfo(name)
      info.size = len(data)
      tar.addfile(info, io.BytesIO(data))
    for info in extra:
      tar.addfile(info, io.BytesIO(b"x" * info.size) if info.size else None)
  return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def server(tmp_path):
  """Serves tmp_path/served on 127.0.0.1; yields (base_url, request paths)."""
  root = tmp_path / "served"
  root.mkdir()
  requests = []

  class Handler(http.server.SimpleHTTPRequestHandler):

    def do_GET(self):
      requests.append(self.path)
      super().do_GET()

    def log_message(self, *args):
      pass

  httpd = http.server.ThreadingHTTPServer(
      ("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
  thread = threading.Thread(target=httpd.serve_forever, daemon=True)
  thread.start()
  try:
    yield f"http://127.0.0.1:{httpd.server_address[1]}", requests
  finally:
    httpd.shutdown()
    httpd.server_close()


def test_download_verifies_and_extracts(tmp_path, server, capsys):
  base, requests = server
  sha = _make_archive(tmp_path / "served" / ARCHIVE)
  data_dir = tmp_path / "data"
  folder = download.ensure_dataset(str(data_dir), "cifar10",
                                   url=f"{base}/{ARCHIVE}", sha256=sha)
  assert folder == str(data_dir / FOLDER)
  for name, data in _fake_files().items():
    assert (data_dir / name).read_bytes() == data
  assert sorted(os.listdir(data_dir)) == sorted([ARCHIVE, FOLDER])  # No temps.
  err = capsys.readouterr().err
  assert f"Downloading {ARCHIVE}" in err and "100.0%" in err
  assert requests == [f"/{ARCHIVE}"]

  # Complete folder: returned at once, even with an unreachable URL.
  again = download.ensure_dataset(
      str(data_dir), "cifar10", url=f"http://127.0.0.1:{closed_port()}/x")
  assert again == folder and len(requests) == 1


def test_mirror_env_var(tmp_path, server, monkeypatch):
  base, requests = server
  sha = _make_archive(tmp_path / "served" / ARCHIVE)
  monkeypatch.setenv(download.MIRROR_ENV, base + "/")
  download.ensure_dataset(str(tmp_path / "data"), "cifar10", sha256=sha)
  assert requests == [f"/{ARCHIVE}"]


def test_checksum_mismatch_deletes_archive(tmp_path, server):
  base, _ = server
  sha = _make_archive(tmp_path / "served" / ARCHIVE)
  data_dir = tmp_path / "data"
  with pytest.raises(DataError) as e:
    download.ensure_dataset(str(data_dir), "cifar10", url=f"{base}/{ARCHIVE}",
                            sha256="0" * 64)
  msg = str(e.value)
  for word in ("Checksum mismatch", ARCHIVE, "expected sha256 " + "0" * 64,
               "got " + sha, "deleted", "by hand"):
    assert word in msg
  assert os.listdir(data_dir) == []


def _evil(name, kind=tarfile.REGTYPE, linkname=""):
  info = tarfile.TarInfo(name)
  info.type, info.linkname = kind, linkname
  info.size = 4 if kind == tarfile.REGTYPE else 0
  return info


@pytest.mark.parametrize("make_member", [
    lambda outside: _evil("../evil"),
    lambda outside: _evil(f"{FOLDER}/../../evil"),
    lambda outside: _evil(str(outside / "evil")),
    lambda outside: _evil(f"{FOLDER}/link", tarfile.SYMTYPE, "../../evil"),
    lambda outside: _evil(f"{FOLDER}/link", tarfile.SYMTYPE, str(outside)),
    lambda outside: _evil(f"{FOLDER}/hard", tarfile.LNKTYPE, "../evil"),
    lambda outside: _evil(f"{FOLDER}/dev", tarfile.CHRTYPE),
], ids=["dotdot", "nested-dotdot", "absolute", "symlink-up", "symlink-abs",
        "hardlink", "device"])
def test_unsafe_archive_is_refused_whole(tmp_path, make_member):
  outside = tmp_path / "outside"
  data_dir = tmp_path / "data"
  member = make_member(outside)
  sha = _make_archive(data_dir / ARCHIVE, extra=[member])
  with pytest.raises(DataError) as e:
    download.ensure_dataset(str(data_dir), "cifar10", sha256=sha,
                            url="http://127.0.0.1:1/never-used")
  assert "Refusing to extract" in str(e.value)
  assert repr(member.name) in str(e.value)
  # The good members came first in the archive; none of them was written.
  assert os.listdir(data_dir) == [ARCHIVE]
  assert not outside.exists() and not (tmp_path / "evil").exists()


def test_archive_already_present_needs_no_network(tmp_path):
  data_dir = tmp_path / "data"
  sha = _make_archive(data_dir / ARCHIVE)
  (data_dir / FOLDER).mkdir()  # An incomplete folder from some earlier run.
  folder = download.ensure_dataset(
      str(data_dir), "cifar10", sha256=sha,
      url=f"http://127.0.0.1:{closed_port()}/x")
  assert sorted(os.listdir(folder)) == sorted(cifar.CIFAR10.files)


def test_archive_without_expected_files(tmp_path):
  data_dir = tmp_path / "data"
  data_dir.mkdir()
  with tarfile.open(data_dir / ARCHIVE, "w:gz") as tar:
    tar.addfile(tarfile.TarInfo("other/readme"), io.BytesIO(b""))
  sha = hashlib.sha256((data_dir / ARCHIVE).read_bytes()).hexdigest()
  with pytest.raises(DataError, match="data_batch_1.bin"):
    download.ensure_dataset(str(data_dir), "cifar10", sha256=sha)
  assert os.listdir(data_dir) == [ARCHIVE]


def test_unreachable_url_fails_fast(tmp_path):
  data_dir = tmp_path / "data"
  url = f"http://127.0.0.1:{closed_port()}/{ARCHIVE}"
  start = time.monotonic()
  with pytest.raises(DataError) as e:
    download.ensure_dataset(str(data_dir), "cifar10", url=url, timeout=5)
  assert time.monotonic() - start < seconds(5)
  msg = str(e.value)
  assert f"Could not download {url}" in msg
  assert str(data_dir / ARCHIVE) in msg and str(data_dir / FOLDER) in msg
  assert os.listdir(data_dir) == []  # The temp file is gone.


def test_truncated_download_leaves_nothing(tmp_path):
  data_dir = tmp_path / "data"
  with socket.socket() as srv:
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)

    def serve_short_body():
      conn, _ = srv.accept()
      with conn:
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\nxyz")

    thread = threading.Thread(target=serve_short_body, daemon=True)
    thread.start()
    with pytest.raises(DataError, match="Could not download"):
      download.ensure_dataset(
          str(data_dir), "cifar10",
          url=f"http://127.0.0.1:{srv.getsockname()[1]}/{ARCHIVE}")
    thread.join(5)
  assert os.listdir(data_dir) == []


def test_http_error_is_data_error(server, tmp_path):
  base, _ = server
  with pytest.raises(DataError, match="HTTP 404"):
    download.ensure_dataset(str(tmp_path / "d"), "cifar10", url=f"{base}/nope")


def test_file_url(tmp_path):
  src = tmp_path / "src" / ARCHIVE
  sha = _make_archive(src)
  folder = download.ensure_dataset(str(tmp_path / "data"), "cifar10",
                                   url=src.as_uri(), sha256=sha)
  assert os.path.isfile(os.path.join(folder, "test_batch.bin"))


def test_unknown_dataset_lists_choices(tmp_path):
  with pytest.raises(ConfigError, match="cifar10, cifar100"):
    download.ensure_dataset(str(tmp_path), "cifar1000")


def _run_cli(*args):
  return run_tool("download_cifar", *args)


def test_cli_failure_is_one_clear_message(tmp_path):
  data_dir = tmp_path / "data"
  result = _run_cli(f"--data_dir={data_dir}", "--dataset=cifar10",
                    f"--url=http://127.0.0.1:{closed_port()}/x.tar.gz")
  assert result.returncode != 0
  assert "Traceback" not in result.stderr
  assert result.stderr.startswith("error: Could not download")
  assert str(data_dir / ARCHIVE) in result.stderr


def test_cli_success_prints_folder(tmp_path):
  src = tmp_path / "src" / ARCHIVE
  sha = _make_archive(src)
  data_dir = tmp_path / "data"
  result = _run_cli(f"--data_dir={data_dir}", f"--url={src.as_uri()}",
                    f"--sha256={sha}")
  assert result.returncode == 0, result.stderr
  assert result.stdout.strip() == str(data_dir / FOLDER)


def test_a_placed_archive_with_a_bad_checksum_is_moved_aside_not_deleted(tmp_path):
  data_dir = tmp_path / "data"
  _make_archive(data_dir / ARCHIVE)
  placed = (data_dir / ARCHIVE).read_bytes()
  (data_dir / (ARCHIVE + ".corrupt")).write_bytes(b"an older one")
  with pytest.raises(DataError) as e:
    download.ensure_dataset(str(data_dir), "cifar10", sha256="0" * 64,
                            url=f"http://127.0.0.1:{closed_port()}/x")
  moved = data_dir / (ARCHIVE + ".corrupt.1")  # The older one stays too.
  assert f"moved aside to {moved}" in str(e.value)
  assert "not deleted" in str(e.value)
  assert moved.read_bytes() == placed
  assert (data_dir / (ARCHIVE + ".corrupt")).read_bytes() == b"an older one"
  assert not (data_dir / ARCHIVE).exists()


def test_an_incomplete_folder_with_files_is_moved_aside(tmp_path, capsys):
  data_dir = tmp_path / "data"
  sha = _make_archive(data_dir / ARCHIVE)
  (data_dir / FOLDER).mkdir()
  (data_dir / FOLDER / "notes.txt").write_text("mine")
  folder = download.ensure_dataset(
      str(data_dir), "cifar10", sha256=sha,
      url=f"http://127.0.0.1:{closed_port()}/x")
  assert sorted(os.listdir(folder)) == sorted(cifar.CIFAR10.files)
  kept = data_dir / (FOLDER + ".incomplete")
  assert (kept / "notes.txt").read_text() == "mine"
  assert f"moved it aside to {kept}" in capsys.readouterr().err
