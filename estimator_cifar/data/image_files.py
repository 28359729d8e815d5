"""Image files from a user's folder, read without hanging or exhausting memory.

An image folder may hold anything: a FIFO (open() blocks forever), a
sub-folder or a socket named `x.png`, a symlink loop, or a small PNG whose
header claims 20000x20000 pixels (1.2 GB once decoded, several GB on the way
to 32x32). So only regular files are listed and opened, and each image's size
is read from its header and checked against a decoded-pixel limit before
anything decodes it, as PIL does against decompression bombs. Encoded
bytes (the Predictor's input) go through the same header parsers and limit.

The one home of the image extensions, the header parsers and the pixel limit:
`--images`, `data.source=folder` and the Predictor all ask this module.

Imports no TensorFlow.
"""

import errno
import io
import os
import stat
import struct

from absl import logging

from estimator_cifar.errors import ConfigError, DataError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
# PIL's Image.MAX_IMAGE_PIXELS (a 24-bit image of 256 MiB): the usual bound.
MAX_PIXELS = 89_478_485
MAX_PIXELS_ENV = "ESTIMATOR_CIFAR_MAX_IMAGE_PIXELS"

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_SIGNATURE = b"\xff\xd8\xff"
# JPEG start-of-frame markers (they hold the size); C4, C8 and CC are others.
_JPEG_FRAMES = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# JPEG markers without a length field: TEM, RST0-7, SOI, EOI.
_JPEG_STANDALONE = frozenset([0x01, *range(0xD0, 0xDA)])


def max_pixels() -> int:
  """The decoded-pixel limit: MAX_PIXELS, or $ESTIMATOR_CIFAR_MAX_IMAGE_PIXELS.

  Raises:
    ConfigError: the variable is set to something other than a positive integer.
  """
  value = os.environ.get(MAX_PIXELS_ENV, "").strip()
  if not value:
    return MAX_PIXELS
  if not value.isdigit() or int(value) <= 0:
    raise ConfigError(f"{MAX_PIXELS_ENV}={value!r} is not a positive whole "
                      f"number of pixels; unset it for the default {MAX_PIXELS:,}.")
  return int(value)


def folder_images(folder: str, links: bool = True) -> list[str]:
  """The PNG/JPEG files directly in `folder`, sorted; nothing else is opened.

  Entries that are not regular files (sub-folders, FIFOs, sockets, devices)
  are skipped, and so are broken links and symlink loops, each with a warning;
  with `links=False`, every symbolic link is skipped.

  Raises:
    OSError: `folder` cannot be listed.
  """
  found = []
  for name in sorted(os.listdir(folder)):
    if not name.lower().endswith(IMAGE_EXTENSIONS):
      continue
    path = os.path.join(folder, name)
    if not links and os.path.islink(path):
      logging.warning("Skipping %s: a symbolic link.", path)
      continue
    try:
      mode = os.stat(path).st_mode  # Follows links, as reading would.
    except OSError as e:
      why = "a symlink loop" if e.errno == errno.ELOOP else e.strerror
      logging.warning("Skipping %s: %s.", path, why)
      continue
    if stat.S_ISREG(mode):
      found.append(path)
    else:
      logging.warning("Skipping %s: not a regular file.", path)
  return found


def check_image(path: str) -> tuple[int, int]:
  """Checks that `path` is a PNG or JPEG file that may be decoded.

  Returns:
    (width, height) from the image's header.

  Raises:
    DataError: not a regular file, unreadable, not a PNG or JPEG, no size in
      its header, or more pixels than `max_pixels()`.
  """
  try:
    # O_NONBLOCK: opening a FIFO must not wait for a writer; fstat then
    # rejects it, and whatever replaced a checked path since.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
  except OSError as e:
    raise DataError(f"Cannot read the image {path}: {e.strerror}. Fix its "
                    "permissions or leave it out.") from None
  with os.fdopen(fd, "rb") as f:
    if not stat.S_ISREG(os.fstat(fd).st_mode):
      raise DataError(f"The image {path} is not a regular file (a folder, "
                      "FIFO, socket or device). Pass image files only.")
    known, size = _header_size(f)
  if not known:
    raise DataError(f"{path} is not a PNG or JPEG image (its first bytes do "
                    "not match either format). Convert it, or leave it out.")
  if size is None:
    raise DataError(f"{path} is damaged: its header gives no image size.")
  check_pixels(path, *size)
  return size


def check_encoded(data: bytes, name: str) -> tuple[int, int] | None:
  """(width, height) of encoded PNG/JPEG `data` from its header, checked
  against `max_pixels()` as `check_image` checks a file; None for other
  formats or a header without a size (decoding names those).

  Raises:
    DataError: more pixels than `max_pixels()`, naming the image `name`.
  """
  size = encoded_size(data)
  if size is not None:
    check_pixels(name, *size)
  return size


def encoded_size(data: bytes) -> tuple[int, int] | None:
  """(width, height) from a PNG's or JPEG's header in `data`; else None."""
  return _header_size(io.BytesIO(data))[1]


def check_pixels(name: str, width: int, height: int) -> None:
  """Refuses an image of more than `max_pixels()` before anything decodes it.

  Raises:
    DataError: naming `name`, its size, the limit and how to raise it.
  """
  limit = max_pixels()
  if width * height > limit:
    raise DataError(
        f"{name} is {width}x{height}: {width * height:,} pixels once decoded, "
        f"over the limit of {limit:,} ({MAX_PIXELS_ENV}), which guards memory "
        "against decompression bombs. Shrink the image, or if you trust it "
        f"raise the limit: {MAX_PIXELS_ENV}={width * height}.")


def _header_size(f) -> tuple[bool, tuple[int, int] | None]:
  """(is a PNG or JPEG, its (width, height) or None) from the open file `f`."""
  head = f.read(8)
  if head.startswith(_PNG_SIGNATURE):
    return True, _png_size(f)
  if head.startswith(_JPEG_SIGNATURE):
    f.seek(2)
    return True, _jpeg_size(f)
  return False, None


def _png_size(f) -> tuple[int, int] | None:
  """(width, height) from the IHDR chunk, which must come first."""
  chunk = f.read(16)  # Length, type, then width and height.
  if len(chunk) < 16 or chunk[4:8] != b"IHDR":
    return None
  return struct.unpack(">II", chunk[8:16])


def _jpeg_size(f) -> tuple[int, int] | None:
  """(width, height) from the first start-of-frame segment, read past others."""
  while True:
    byte = f.read(1)
    if byte != b"\xff":
      return None
    marker = f.read(1)
    while marker == b"\xff":  # Fill bytes before a marker.
      marker = f.read(1)
    if not marker:
      return None
    if marker[0] in _JPEG_STANDALONE:
      continue
    field = f.read(2)
    if len(field) < 2:
      return None
    length = struct.unpack(">H", field)[0]
    if marker[0] in _JPEG_FRAMES:
      frame = f.read(5)  # Precision, height, width.
      if len(frame) < 5:
        return None
      height, width = struct.unpack(">HH", frame[1:5])
      return width, height
    f.seek(length - 2, os.SEEK_CUR)
