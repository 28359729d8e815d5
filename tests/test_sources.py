"""Data sources: archive-only data_dir is extracted, offline fails fast and clearly."""

import dataclasses
import hashlib
import os
import tarfile
import time

import pytest

from estimator_cifar.data import cifar, download, fake, sources
from tests.testutil import (closed_port, error_line, run_cli, seconds,
                            tiny_config)


def test_archive_alone_is_verified_and_extracted(tmp_path, monkeypatch):
  staging = tmp_path / "staging"
  fake.write_cifar10(str(staging), train_per_file=4, test=6, easy=False)
  data_dir = tmp_path / "data"
  data_dir.mkdir()
  archive = data_dir / "cifar-10-binary.tar.gz"
  with tarfile.open(archive, "w:gz") as tar:
    tar.add(staging / "cifar-10-batches-bin", arcname="cifar-10-batches-bin")
  digest = hashlib.sha256(archive.read_bytes()).hexdigest()
  monkeypatch.setitem(cifar.DATASETS, "cifar10", dataclasses.replace(
      cifar.DATASETS["cifar10"], sha256=digest))
  source = sources.get_source(tiny_config(), str(data_dir))
  assert (source.num_train, source.num_eval) == (20, 6)
  assert os.path.isfile(data_dir / "cifar-10-batches-bin" / "test_batch.bin")


@pytest.mark.slow
def test_offline_run_fails_fast_and_says_where_to_put_the_archive(tmp_path):
  mirror = f"http://127.0.0.1:{closed_port()}"
  start = time.time()
  # An empty cache: train.precision=auto must not time the network before
  # the data is there.
  proc = run_cli("--experiment=resnet_sgd", f"--data_dir={tmp_path}",
                 f"--model_dir={tmp_path / 'm'}", timeout=120,
                 env={download.MIRROR_ENV: mirror,
                      "XDG_CACHE_HOME": str(tmp_path / "cache")})
  assert time.time() - start < seconds(30)
  assert "train.precision=auto" not in proc.stderr
  error = error_line(proc.returncode, proc.stderr)
  assert error == proc.stderr.strip().splitlines()[-1]
  assert "cifar-10-binary.tar.gz" in error
  assert str(tmp_path) in error
