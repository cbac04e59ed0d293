#!/usr/bin/env python3
"""Small seed inputs for the fuzz targets in fuzz/ (one per container or format the readers
take), and the values the tests read back from them (tests/checkpoint_errors.rs).

    pip install torch numpy pillow safetensors
    python scripts/make_fuzz_seeds.py

Writes tests/fixtures/fuzz/:
  checkpoint/zip.pth          torch.save of a state dict (zip container, torch >= 1.6)
  checkpoint/legacy.pth       the same with _use_new_zipfile_serialization=False (0.1.10-1.5)
  checkpoint/torchreid.pth    Torchreid's {'state_dict', 'epoch', ...} dict, f16 tensors
  checkpoint/tar.pth          the early TAR container (before PyTorch 0.1.10), built by hand as
                              torch/serialization.py's `_legacy_load` reads it: members
                              sys_info, storages, tensors, pickle
  checkpoint/plain.pkl        a plain pickle of a dict (no tensors)
  checkpoint/model.safetensors  safetensors.torch.save_file of the state dict, with metadata
  npy/*.npy                   float32 / float64 matrices, int32 / int64 id vectors
  image/*                     an 8x16 baseline and a progressive JPEG, greyscale and 16-bit
                              RGBA PNGs
The tensors: weight = [[1.5, -2.0], [3.25, 0.5]], bias = [0.25, -0.75].
"""

import io
import pickle
import struct
import tarfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "fuzz"
WEIGHT = [[1.5, -2.0], [3.25, 0.5]]
BIAS = [0.25, -0.75]


def state_dict(dtype=torch.float32):
    return OrderedDict(
        weight=torch.tensor(WEIGHT, dtype=dtype), bias=torch.tensor(BIAS, dtype=dtype)
    )


def torch_class_tuple(items, class_name):
    """Protocol-2 pickle of `(*items, torch.<class_name>)`, written by hand: the class is a
    GLOBAL reference, which pickling the real class would tie to this torch version."""
    out = io.BytesIO()
    out.write(b"\x80\x02(")
    for item in items:
        if isinstance(item, int):
            out.write(b"J" + struct.pack("<i", item))
        else:
            text = item.encode()
            out.write(b"U" + bytes([len(text)]) + text)
    out.write(b"ctorch\n" + class_name.encode() + b"\nt.")
    return out.getvalue()


class TensorRef:
    """Pickled as a persistent id naming an entry of the `tensors` member."""

    def __init__(self, key):
        self.key = key


class RefPickler(pickle.Pickler):
    def persistent_id(self, obj):
        return str(obj.key) if isinstance(obj, TensorRef) else None


def tar_checkpoint(path):
    tensors = OrderedDict(weight=(sum(WEIGHT, []), [2, 2]), bias=(BIAS, [2]))
    storages, table = io.BytesIO(), io.BytesIO()
    pickle.dump(len(tensors), storages, protocol=2)
    pickle.dump(len(tensors), table, protocol=2)
    saved = OrderedDict()
    for index, (name, (values, shape)) in enumerate(tensors.items()):
        storage_key, tensor_key = 100 + index, 200 + index
        storages.write(torch_class_tuple([storage_key, "cpu"], "FloatStorage"))
        storages.write(struct.pack("<q", len(values)))
        storages.write(struct.pack(f"<{len(values)}f", *values))
        strides = [shape[1], 1] if len(shape) == 2 else [1]
        table.write(torch_class_tuple([tensor_key, storage_key], "FloatTensor"))
        table.write(struct.pack("<i", len(shape)) + b"\0" * 4)
        table.write(struct.pack(f"<{len(shape)}q", *shape))
        table.write(struct.pack(f"<{len(shape)}q", *strides))
        table.write(struct.pack("<q", 0))
        saved[name] = TensorRef(tensor_key)
    pickle.dump([], storages, protocol=2)  # no storage views
    main = io.BytesIO()
    RefPickler(main, protocol=2).dump(saved)
    sys_info = pickle.dumps(
        {"protocol_version": 1000, "little_endian": True,
         "type_sizes": {"short": 2, "int": 4, "long": 8}},
        protocol=2,
    )
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in [("sys_info", sys_info), ("storages", storages.getvalue()),
                           ("tensors", table.getvalue()), ("pickle", main.getvalue())]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def main():
    for sub in ["checkpoint", "npy", "image"]:
        (OUT / sub).mkdir(parents=True, exist_ok=True)
    ckpt = OUT / "checkpoint"
    torch.save(state_dict(), ckpt / "zip.pth")
    torch.save(state_dict(), ckpt / "legacy.pth", _use_new_zipfile_serialization=False)
    torch.save({"state_dict": state_dict(torch.float16), "epoch": 3, "rank1": 0.5},
               ckpt / "torchreid.pth")
    tar_checkpoint(ckpt / "tar.pth")
    save_file(state_dict(), ckpt / "model.safetensors", metadata={"model": "seed"})
    with open(ckpt / "plain.pkl", "wb") as f:
        pickle.dump({"epoch": 3, "values": [1.5, -2.0]}, f, protocol=2)

    npy = OUT / "npy"
    np.save(npy / "f32.npy", np.array(WEIGHT, dtype=np.float32))
    np.save(npy / "f64.npy", np.array(WEIGHT, dtype=np.float64))
    np.save(npy / "i32.npy", np.array([1, 2, 2, 7], dtype=np.int32))
    np.save(npy / "i64.npy", np.array([0, -1, 5], dtype=np.int64))

    image = OUT / "image"
    y, x = np.mgrid[0:16, 0:8]
    rgb = np.stack([x * 30, y * 15, (x + y) * 10], axis=-1).astype(np.uint8)
    Image.fromarray(rgb).save(image / "baseline.jpg", quality=90)
    Image.fromarray(rgb).save(image / "progressive.jpg", quality=90, progressive=True)
    Image.fromarray(rgb[..., 0]).save(image / "grey.png")
    rgba16 = np.concatenate([rgb, np.full((16, 8, 1), 255, np.uint8)], axis=-1)
    rgba16 = rgba16.astype(">u2") * 257
    rgba_png(image / "rgba16.png", rgba16)


def rgba_png(path, pixels):
    """A 16-bit RGBA PNG (Pillow does not write that mode)."""
    import zlib

    height, width, _ = pixels.shape
    raw = b"".join(b"\0" + pixels[row].tobytes() for row in range(height))

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))

    header = struct.pack(">IIBBBBB", width, height, 16, 6, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


if __name__ == "__main__":
    main()
