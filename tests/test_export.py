"""SavedModel export (signatures, EMA weights, best/latest exporters) and
--mode=predict."""

import glob
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from estimator_cifar.engine import export, export_dirs, predict, modes
from estimator_cifar.data import fake
from estimator_cifar.errors import CheckpointError, DataError
from tests.testutil import CONSTANT_LR, TINY, run_cli, tiny_config

# EMA decay 0.9 so the averaged weights differ clearly from the raw ones.
EMA = ["ema.decay=0.9", "ema.eval_with_ema=true", "optimizer.learning_rate=0.4",
       *CONSTANT_LR, "eval.batch_size=50", "train.steps=150",
       "train.seed=1", "eval.export_best=true", "eval.export_latest=2"]


def raw_test_set(data_dir: str) -> tuple[np.ndarray, np.ndarray]:
  """The raw uint8 test images [N, 32, 32, 3] and labels of the fixture."""
  path = os.path.join(data_dir, "cifar-10-batches-bin", "test_batch.bin")
  records = np.fromfile(path, np.uint8).reshape(-1, 3073)
  return records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), records[:, 0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, cifar10_dir):
  """(model_dir, eval accuracy with EMA weights) of a train_and_eval run."""
  model_dir = str(tmp_path_factory.mktemp("ema_run"))
  result = modes.run(tiny_config(*EMA), model_dir, "train_and_eval", cifar10_dir)
  return model_dir, float(result["accuracy"])


def newest(pattern: str) -> str:
  found = sorted(glob.glob(pattern))
  assert found, pattern
  return found[-1]


@pytest.mark.slow
def test_train_and_eval_exports_best_and_latest(trained):
  model_dir, accuracy = trained
  best = newest(os.path.join(model_dir, "export", "best", "[0-9]*"))
  assert export_dirs.read_info(best)["accuracy"] == pytest.approx(accuracy)
  assert open(os.path.join(best, "assets.extra", "label_names.txt")).read().split() \
      == list(fake.LABEL_NAMES_10)
  assert os.path.isfile(os.path.join(
      newest(os.path.join(model_dir, "export", "latest", "[0-9]*")), "saved_model.pb"))


@pytest.mark.slow
def test_saved_model_on_raw_images_matches_eval_accuracy(trained, cifar10_dir):
  model_dir, accuracy = trained
  path = export.run_export(tiny_config(*EMA), model_dir, None)
  assert os.path.dirname(path) == os.path.join(model_dir, "export")
  assert os.path.basename(path).isdigit()
  serve = tf.saved_model.load(path).signatures["serving_default"]
  images, labels = raw_test_set(cifar10_dir)
  out = serve(images=tf.constant(images))
  assert out["classes"].dtype == tf.int64
  assert out["probabilities"].shape == (len(labels), 10)
  assert out["logits"].shape == (len(labels), 10)
  np.testing.assert_allclose(out["probabilities"].numpy().sum(1), 1, rtol=1e-5)
  exported_accuracy = float(np.mean(out["classes"].numpy() == labels))
  print(f"eval accuracy {accuracy:.4f}, SavedModel on raw test images "
        f"{exported_accuracy:.4f}")
  assert abs(exported_accuracy - accuracy) <= 0.01


@pytest.mark.slow
def test_export_holds_ema_weights_not_raw(trained):
  model_dir, _ = trained
  path = newest(os.path.join(model_dir, "export", "best", "[0-9]*"))
  checkpoint = export_dirs.read_info(path)["checkpoint"]
  reader = tf.train.load_checkpoint(os.path.join(model_dir, checkpoint))
  loaded = tf.saved_model.load(path)
  weights = {v.name[:-2]: v.numpy() for v in loaded.variables}
  for name in ("tiny/conv/kernel", "tiny/bn/gamma", "tiny/logits/kernel"):
    np.testing.assert_array_equal(
        weights[name], reader.get_tensor(name + "/ExponentialMovingAverage"), name)
    assert np.abs(weights[name] - reader.get_tensor(name)).max() > 1e-3, name
  # Moving statistics have no shadow: exported as trained.
  np.testing.assert_array_equal(weights["tiny/bn/moving_mean"],
                                reader.get_tensor("tiny/bn/moving_mean"))


@pytest.mark.slow
def test_encoded_image_signature_png_jpeg_and_resize(trained, cifar10_dir):
  model_dir, _ = trained
  loaded = tf.saved_model.load(newest(os.path.join(model_dir, "export", "latest", "[0-9]*")))
  images, _ = raw_test_set(cifar10_dir)
  images = images[:8]
  raw = loaded.signatures["serving_default"](images=tf.constant(images))
  decode = loaded.signatures[export.BYTES_SIGNATURE]
  png = decode(image_bytes=tf.constant([tf.io.encode_png(i).numpy() for i in images]))
  np.testing.assert_array_equal(png["logits"].numpy(), raw["logits"].numpy())
  jpeg = decode(image_bytes=tf.constant(
      [tf.io.encode_jpeg(i, quality=95).numpy() for i in images]))
  assert jpeg["classes"].dtype == tf.int64 and jpeg["logits"].shape == (8, 10)
  assert np.mean(jpeg["classes"].numpy() == raw["classes"].numpy()) >= 0.75
  # A 64x64 image (nearest-neighbour upscaled) is resized back to 32x32.
  big = [tf.io.encode_png(np.repeat(np.repeat(i, 2, 0), 2, 1)).numpy() for i in images]
  resized = decode(image_bytes=tf.constant(big))
  assert np.mean(resized["classes"].numpy() == raw["classes"].numpy()) >= 0.75


@pytest.mark.slow
def test_best_exporter_keeps_a_better_earlier_export(trained, tmp_path):
  """After a restart a worse model must not replace the best export."""
  model_dir, _ = trained
  export_path = str(tmp_path / "best")
  earlier = os.path.join(export_path, "1700000000")
  os.makedirs(earlier)
  json.dump({"accuracy": 0.9}, open(os.path.join(earlier, export_dirs.INFO_FILE), "w"))
  exporter = export.BestAccuracyExporter(tiny_config(*EMA), None)
  estimator = export.serving_estimator(tiny_config(*EMA), model_dir, 10)
  checkpoint = tf.train.latest_checkpoint(model_dir)
  assert exporter.export(estimator, export_path, checkpoint, {"accuracy": 0.8}, False) is None
  assert os.listdir(export_path) == ["1700000000"]
  path = exporter.export(estimator, export_path, checkpoint,
                         {"accuracy": 0.95, "global_step": 150}, False)
  assert os.listdir(export_path) == [os.path.basename(path)]  # Only the best kept.
  assert export.best_export(export_path) == (path, 0.95)


@pytest.mark.slow
def test_latest_exporter_keeps_the_newest_export_latest(trained, tmp_path):
  model_dir, _ = trained
  # train_and_eval's own run kept at most eval.export_latest=2.
  assert 1 <= len(glob.glob(os.path.join(model_dir, "export", "latest",
                                         "[0-9]*"))) <= 2
  cfg = tiny_config(*EMA, "eval.export_best=false")
  (latest,) = export.exporters(cfg)
  assert export.exporters(tiny_config(*EMA, "eval.export_best=false",
                                      "eval.export_latest=0")) == []
  estimator = export.serving_estimator(cfg, model_dir, 10)
  checkpoint = tf.train.latest_checkpoint(model_dir)
  export_path = str(tmp_path / "latest")
  made = [latest.export(estimator, export_path, checkpoint, {"accuracy": 0.5},
                        False) for _ in range(3)]
  assert len(set(made)) == 3
  assert sorted(os.listdir(export_path)) == sorted(
      os.path.basename(path) for path in made[1:])  # The oldest is gone.


def _write_images(folder, images) -> list[str]:
  os.makedirs(folder, exist_ok=True)
  paths = []
  for i, image in enumerate(images):
    encode, ext = (tf.io.encode_png, "png") if i % 2 == 0 else (tf.io.encode_jpeg, "jpg")
    paths.append(os.path.join(folder, f"img{i}.{ext}"))
    tf.io.write_file(paths[-1], encode(image))
  return paths


@pytest.mark.slow
def test_predict_table(trained, cifar10_dir, tmp_path, capsys):
  model_dir, _ = trained
  images, labels = raw_test_set(cifar10_dir)
  paths = _write_images(str(tmp_path / "imgs"), images[:6])
  results = predict.run_predict(tiny_config(*EMA), model_dir, ",".join(paths[:2]) +
                                "," + str(tmp_path / "imgs"), top=3)
  table = capsys.readouterr().out.splitlines()
  assert table[0].split() == ["image", "rank", "class", "label", "probability"]
  assert len(results) == 2 + 6 and len(table) == 1 + 3 * 8
  first = table[1].split()
  assert first[0] == paths[0] and first[1] == "1"
  assert first[3] == fake.LABEL_NAMES_10[int(first[2])]
  assert 0 < float(first[4]) <= 1
  top1 = [r["predictions"][0]["class"] for r in results[2:]]
  assert np.mean(np.array(top1) == labels[:6]) >= 0.5  # An easy task.


@pytest.mark.slow
def test_predict_json_cli(trained, cifar10_dir, tmp_path):
  model_dir, _ = trained
  images, _ = raw_test_set(cifar10_dir)
  folder = str(tmp_path / "imgs")
  _write_images(folder, images[:3])
  done = run_cli("--experiment=resnet_sgd", "--mode=predict", f"--model_dir={model_dir}",
                 f"--images={folder}", "--output=json", "--top_k=2",
                 "--params_override=" + ",".join(TINY + EMA))
  assert done.returncode == 0, done.stderr[-2000:]
  results = json.loads(done.stdout)
  assert [os.path.basename(r["image"]) for r in results] == ["img0.png", "img1.jpg",
                                                             "img2.png"]
  for r in results:
    probs = [p["probability"] for p in r["predictions"]]
    assert len(probs) == 2 and probs == sorted(probs, reverse=True)
    assert all(p["label"] == fake.LABEL_NAMES_10[p["class"]] for p in r["predictions"])


def test_predict_rejects_missing_and_non_image_files(tmp_path):
  with pytest.raises(DataError, match="nope.png does not exist"):
    predict.image_paths(str(tmp_path / "nope.png"))
  (tmp_path / "notes.png").write_text("not an image")
  with pytest.raises(DataError, match="is not a PNG or JPEG"):
    predict.image_paths(str(tmp_path / "notes.png"))
  (tmp_path / "empty").mkdir()
  with pytest.raises(DataError, match="has no"):
    predict.image_paths(str(tmp_path / "empty"))


@pytest.mark.slow
def test_predict_with_another_model_config_names_the_difference(trained, tmp_path):
  model_dir, _ = trained
  image = str(tmp_path / "a.png")
  tf.io.write_file(image, tf.io.encode_png(np.zeros([32, 32, 3], np.uint8)))
  with pytest.raises(CheckpointError) as e:
    predict.run_predict(tiny_config(*EMA, "model.name=convnet"), model_dir, image)
  assert "Key convnet/" in str(e.value) and "not found in checkpoint" in str(e.value)
  assert "model.name: 'tiny' -> 'convnet'" in str(e.value)
