"""The peer a user would hand-write: a ~60-line Estimator ResNet-20 on CIFAR-10 binaries.

Usage: minimal_estimator.py --data_dir=D --model_dir=M [--steps=300] [--batch=128]
Prints `minimal steps=N accuracy=A train_images_per_sec=R` as its last line.
"""
import argparse
import glob
import os
import time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf
L, v1 = tf.compat.v1.layers, tf.compat.v1

def dataset(data_dir, train, batch):
  files = sorted(glob.glob(os.path.join(data_dir, "cifar-10-batches-bin",  # noqa: E501
                                        "data_batch_*.bin" if train else "test_batch.bin")))
  def parse(raw):
    r = tf.io.decode_raw(raw, tf.uint8)
    img = tf.transpose(tf.reshape(r[1:], [3, 32, 32]), [1, 2, 0])
    if train:
      img = tf.image.random_flip_left_right(tf.image.random_crop(
          tf.image.pad_to_bounding_box(img, 4, 4, 40, 40), [32, 32, 3]))
    return tf.image.per_image_standardization(img), tf.cast(r[0], tf.int32)
  ds = tf.data.FixedLengthRecordDataset(files, 3073)
  ds = ds.shuffle(50000).repeat() if train else ds
  return ds.map(parse, 8).batch(batch, drop_remainder=train).prefetch(2)

def resnet20(x, training):
  bn = lambda h: L.batch_normalization(h, training=training, fused=True)
  conv = lambda h, f, s: L.conv2d(h, f, 3, s, "same", use_bias=False,
                                  kernel_regularizer=tf.keras.regularizers.l2(1e-4))
  h = tf.nn.relu(bn(conv(x, 16, 1)))
  for stage, f in enumerate([16, 32, 64]):
    for b in range(3):
      s = 2 if stage > 0 and b == 0 else 1
      r = bn(conv(tf.nn.relu(bn(conv(h, f, s))), f, 1))
      if s != 1 or h.shape[-1] != f:
        h = bn(L.conv2d(h, f, 1, s, use_bias=False))
      h = tf.nn.relu(h + r)
  return L.dense(tf.reduce_mean(h, [1, 2]), 10)

def model_fn(features, labels, mode):
  logits = resnet20(features, mode == tf.estimator.ModeKeys.TRAIN)
  loss = (v1.losses.sparse_softmax_cross_entropy(labels, logits)
          + v1.losses.get_regularization_loss())
  if mode == tf.estimator.ModeKeys.EVAL:
    acc = v1.metrics.accuracy(labels, tf.argmax(logits, 1))
    return tf.estimator.EstimatorSpec(mode, loss=loss, eval_metric_ops={"accuracy": acc})
  with tf.control_dependencies(v1.get_collection(v1.GraphKeys.UPDATE_OPS)):
    train_op = v1.train.MomentumOptimizer(0.1, 0.9).minimize(
        loss, v1.train.get_or_create_global_step())
  return tf.estimator.EstimatorSpec(mode, loss=loss, train_op=train_op)

if __name__ == "__main__":
  p = argparse.ArgumentParser()
  for flag, default in (("data_dir", None), ("model_dir", None), ("steps", 300), ("batch", 128)):
    p.add_argument("--" + flag, default=default, type=type(default) if default else str)
  a = p.parse_args()
  est = tf.estimator.Estimator(model_fn, a.model_dir)
  est.train(lambda: dataset(a.data_dir, True, a.batch), max_steps=10)  # Warm-up.
  t = time.perf_counter()
  est.train(lambda: dataset(a.data_dir, True, a.batch), max_steps=a.steps)
  rate = (a.steps - 10) * a.batch / (time.perf_counter() - t)
  acc = est.evaluate(lambda: dataset(a.data_dir, False, 500))["accuracy"]
  print(f"minimal steps={a.steps} accuracy={acc:.4f} train_images_per_sec={rate:.1f}")
