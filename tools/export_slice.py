#!/usr/bin/python3
"""Writes the shipped Fashion-MNIST test slice: the FIRST `count` (default 1000) images of t10k.

  /usr/bin/python3 tools/export_slice.py [--data DIR] [--count 1000] [--out models/fashion-mnist-test-1000.lbds]

Format "LBDS", little-endian:
  bytes 0-3  ASCII "LBDS"
  u32        version = 1
  u32        count
  u32        channels = 1
  u32        height = 28
  u32        width = 28
  count * channels * height * width uint8 pixels (image-major, row-major: exactly the idx bytes)
  count uint8 labels
For 1000 images: 24 + 784000 + 1000 = 785024 bytes. The models' input is pixel / 255 (float32, NCHW).
"""
import argparse
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fashion_mnist as fm  # noqa: E402

HEADER = struct.Struct("<4sIIIII")


def write_lbds(path, images_u8, labels):
    n, c, h, w = images_u8.shape
    if labels.shape != (n,) or int(labels.min()) < 0 or int(labels.max()) > 255:
        raise ValueError("labels: expected n values in [0, 255]")
    data = HEADER.pack(b"LBDS", 1, n, c, h, w) + images_u8.contiguous().numpy().tobytes() \
        + labels.to(dtype=images_u8.dtype).contiguous().numpy().tobytes()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return len(data)


def read_lbds(path):
    """(images uint8 [n, c, h, w], labels int64 [n]) from an LBDS file (checked field by field)."""
    import torch
    with open(path, "rb") as f:
        raw = f.read()
    magic, version, n, c, h, w = HEADER.unpack_from(raw)
    if magic != b"LBDS" or version != 1:
        raise ValueError(f"{path}: not an LBDS v1 file")
    size = n * c * h * w
    if len(raw) != HEADER.size + size + n:
        raise ValueError(f"{path}: {len(raw)} bytes, expected {HEADER.size + size + n}")
    images = torch.frombuffer(bytearray(raw[HEADER.size:HEADER.size + size]), dtype=torch.uint8).reshape(n, c, h, w)
    labels = torch.frombuffer(bytearray(raw[HEADER.size + size:]), dtype=torch.uint8).long()
    return images, labels


def main(argv=None):
    p = argparse.ArgumentParser(description="write the first images of the Fashion-MNIST test set as LBDS")
    p.add_argument("--data", default=None, help=f"idx directory (default $FASHION_MNIST_DIR or {fm.DEFAULT_DIR})")
    p.add_argument("--count", type=int, default=1000)
    p.add_argument("--out", default=None, help="default models/fashion-mnist-test-<count>.lbds")
    args = p.parse_args(argv)
    images, labels = fm.load_split("t10k", args.data)
    if not 1 <= args.count <= len(images):
        p.error(f"--count: expected 1..{len(images)}")
    out = args.out or os.path.join("models", f"fashion-mnist-test-{args.count}.lbds")
    size = write_lbds(out, images[:args.count], labels[:args.count])
    back_images, back_labels = read_lbds(out)
    assert back_images.equal(images[:args.count]) and back_labels.equal(labels[:args.count])
    print(f"wrote {out}: {args.count} images, {size} bytes, labels {back_labels.bincount(minlength=10).tolist()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
