"""Fixtures for the training losses: Torchreid's own CrossEntropyLoss (label smoothing) and
TripletLoss (batch-hard mining), their values and their gradients, on small random batches.

    pip install torch && pip install --no-deps torchreid==0.2.5
    python scripts/make_train_fixtures.py

Writes tests/fixtures/train/losses.json. The loss modules are loaded from the installed
torchreid package by file, so torchreid's other dependencies are not needed.
"""
import importlib.util
import json
import pathlib

import torch

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "train" / "losses.json"


def torchreid_module(name):
    spec = importlib.util.find_spec("torchreid")
    root = pathlib.Path(next(iter(spec.submodule_search_locations)))
    path = root / "reid" / "losses" / f"{name}.py"
    module_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


CrossEntropyLoss = torchreid_module("cross_entropy_loss").CrossEntropyLoss
TripletLoss = torchreid_module("hard_mine_triplet_loss").TripletLoss


def softmax_case(logits, labels, epsilon):
    logits = logits.clone().requires_grad_(True)
    loss = CrossEntropyLoss(logits.shape[1], eps=epsilon, use_gpu=False)(logits, labels)
    loss.backward()
    return {
        "kind": "softmax",
        "epsilon": epsilon,
        "inputs": logits.detach().tolist(),
        "labels": labels.tolist(),
        "loss": loss.item(),
        "grad": logits.grad.tolist(),
    }


def triplet_case(features, labels, margin):
    features = features.clone().requires_grad_(True)
    loss = TripletLoss(margin=margin)(features, labels)
    loss.backward()
    return {
        "kind": "triplet",
        "margin": margin,
        "inputs": features.detach().tolist(),
        "labels": labels.tolist(),
        "loss": loss.item(),
        "grad": features.grad.tolist(),
    }


def main():
    torch.manual_seed(0)
    labels = torch.tensor([3, 1, 0, 3, 2, 1, 0, 2])
    logits = torch.randn(8, 10) * 3
    features = torch.randn(8, 16)
    # Identity centres plus noise: some anchors already satisfy the margin, some do not.
    centres = torch.randn(4, 16)
    clustered = centres[labels] * 0.9 + torch.randn(8, 16) * 0.35
    cases = [
        softmax_case(logits, labels, 0.1),
        softmax_case(logits, labels, 0.0),
        triplet_case(features, labels, 0.3),
        triplet_case(clustered, labels, 0.3),
        triplet_case(clustered, labels, 1.0),
    ]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"torch": torch.__version__, "cases": cases}, indent=1))
    print("wrote", OUT)


if __name__ == "__main__":
    main()
