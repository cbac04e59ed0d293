#!/usr/bin/env python3
"""Checks files written by `reidscope export` with the reference code: each file is loaded
into Torchreid's own model (its classifier removed, since an export holds the feature
extractor) with `load_state_dict(strict=True)` and run in eval mode on
tests/fixtures/input.npy; its features are compared with the reference features of the
checkpoint it was exported from (tests/fixtures/<model>.npy).

    pip install torch torchvision safetensors && pip install --no-deps torchreid==0.2.5
    cargo run --release -- export --model osnet_ibn_x1_0 \
        --weights tests/fixtures/osnet_ibn_x1_0.pth.tar --out /tmp/osnet.safetensors
    python scripts/check_export.py osnet_ibn_x1_0 /tmp/osnet.safetensors [more files...]

`.safetensors` files are read with `safetensors.torch.load_file` (their metadata is printed),
`.pth` files with `torch.load(weights_only=True)` and Torchreid's `state_dict` entry. Prints
the largest absolute difference relative to the reference features' largest magnitude, and
exits 1 when it is above 1e-4 (f32) or 1e-2 (files stored in float16).
"""
import os
import sys

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from torchreid.reid.models import build_model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "tests", "fixtures")


def load_state(path):
    if path.endswith(".safetensors"):
        with safe_open(path, framework="pt") as f:
            print(f"  metadata: {f.metadata()}")
        return load_file(path)
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def main():
    name, files = sys.argv[1], sys.argv[2:]
    reference = np.load(os.path.join(FIXTURES, f"{name}.npy"))
    images = torch.from_numpy(np.load(os.path.join(FIXTURES, "input.npy")))
    failed = False
    for path in files:
        print(path)
        state = load_state(path)
        half = any(t.dtype == torch.float16 for t in state.values())
        model = build_model(name, num_classes=1, pretrained=False)
        model.classifier = torch.nn.Identity()
        state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
        # An exported file holds the feature extractor: every key but the classifier's.
        model.load_state_dict(state, strict=True)
        model.eval()
        with torch.no_grad():
            features = model(images).numpy()
        error = np.abs(features - reference).max() / np.abs(reference).max()
        limit = 1e-2 if half else 1e-4
        verdict = "ok" if error <= limit else "FAIL"
        print(f"  {len(state)} tensors, {'float16' if half else 'float32'}: "
              f"max |torch - reference| / max |reference| = {error:.2e} ({verdict}, limit {limit})")
        failed |= error > limit
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
