"""Peer baseline for tools.benchmark: what a user would write instead.

tf.keras ResNet-20 (He et al. 2016, CIFAR variant, v1) or the tutorial
convnet, trained with model.fit on CIFAR-shaped random data held in memory,
with the standard augmentation (pad-4 random crop, flip, per-image
standardization), momentum SGD. Prints training images/sec over the timed
steps (after warm-up) as the last line. A script on purpose (argparse, no
import of this package): it stands for a user's own, and benchmark runs it by
path in a process of its own.

Usage: python tools/bench/peer_keras.py [--steps N] [--warmup N] [--batch N]
       [--model resnet20|convnet]
"""

import argparse
import time

import numpy as np
import tensorflow as tf

L = tf.keras.layers
REG = tf.keras.regularizers.l2(1e-4)
RECORDS = 10000


def dataset(model: str, batch: int) -> tf.data.Dataset:
  rng = np.random.default_rng(0)
  x = rng.integers(0, 256, size=(RECORDS, 32, 32, 3), dtype=np.uint8)
  y = rng.integers(0, 10, size=(RECORDS,), dtype=np.int64)

  def augment(image, label):
    image = tf.cast(image, tf.float32)
    if model == "convnet":
      image = tf.image.random_crop(image, [24, 24, 3])
    else:
      image = tf.image.pad_to_bounding_box(image, 4, 4, 40, 40)
      image = tf.image.random_crop(image, [32, 32, 3])
    image = tf.image.random_flip_left_right(image)
    return tf.image.per_image_standardization(image), label

  return (tf.data.Dataset.from_tensor_slices((x, y)).repeat().shuffle(RECORDS)
          .map(augment, num_parallel_calls=tf.data.AUTOTUNE)
          .batch(batch, drop_remainder=True).prefetch(tf.data.AUTOTUNE))


def resnet20() -> tf.keras.Model:
  inputs = tf.keras.Input((32, 32, 3))

  def conv(x, filters, stride):
    return L.Conv2D(filters, 3, stride, padding="same", use_bias=False,
                    kernel_regularizer=REG, kernel_initializer="he_normal")(x)

  h = L.ReLU()(L.BatchNormalization()(conv(inputs, 16, 1)))
  for stage, filters in enumerate([16, 32, 64]):
    for block in range(3):
      stride = 2 if (stage > 0 and block == 0) else 1
      r = L.ReLU()(L.BatchNormalization()(conv(h, filters, stride)))
      r = L.BatchNormalization()(conv(r, filters, 1))
      if stride != 1 or h.shape[-1] != filters:
        h = L.BatchNormalization()(L.Conv2D(
            filters, 1, stride, use_bias=False, kernel_regularizer=REG)(h))
      h = L.ReLU()(L.Add()([h, r]))
  h = L.GlobalAveragePooling2D()(h)
  return tf.keras.Model(inputs, L.Dense(10, kernel_regularizer=REG)(h))


def convnet() -> tf.keras.Model:
  inputs = tf.keras.Input((24, 24, 3))
  lrn = L.Lambda(lambda t: tf.nn.lrn(t, 4, 1.0, 0.001 / 9.0, 0.75))
  h = L.Conv2D(64, 5, padding="same", activation="relu")(inputs)
  h = L.MaxPool2D(3, 2, padding="same")(h)
  h = lrn(h)
  h = L.Conv2D(64, 5, padding="same", activation="relu")(h)
  h = lrn(h)
  h = L.MaxPool2D(3, 2, padding="same")(h)
  h = L.Flatten()(h)
  h = L.Dense(384, activation="relu")(h)
  h = L.Dense(192, activation="relu")(h)
  return tf.keras.Model(inputs, L.Dense(10)(h))


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--steps", type=int, default=40)
  parser.add_argument("--warmup", type=int, default=10)
  parser.add_argument("--batch", type=int, default=128)
  parser.add_argument("--model", default="resnet20",
                      choices=["resnet20", "convnet"])
  args = parser.parse_args()
  ds = dataset(args.model, args.batch)
  model = resnet20() if args.model == "resnet20" else convnet()
  model.compile(
      optimizer=tf.keras.optimizers.SGD(0.1, momentum=0.9),
      loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
      metrics=["accuracy"])
  model.fit(ds, steps_per_epoch=args.warmup, epochs=1, verbose=0)
  # Exactly two perf_counter calls bracket the timed fit: bench_peers' wrapper
  # reads the CPU time between the last two.
  start = time.perf_counter()
  model.fit(ds, steps_per_epoch=args.steps, epochs=1, verbose=0)
  seconds = time.perf_counter() - start
  print(f"keras {args.model} batch={args.batch} steps={args.steps} "
        f"images/sec {args.steps * args.batch / seconds:.1f}")


if __name__ == "__main__":
  main()
