"""Fixtures for training: Torchreid's own CrossEntropyLoss (label smoothing) and TripletLoss
(batch-hard mining) with their gradients, PyTorch's optimisers as Torchreid builds them (SGD
with momentum, Adam, AMSGrad; weight decay added to the gradient) over a few steps, and the
learning rate per epoch of Torchreid's schedulers.

    pip install torch && pip install --no-deps torchreid==0.2.5
    python scripts/make_train_fixtures.py

Writes tests/fixtures/train/{losses,optimizers,schedules}.json. The loss modules are loaded from
the installed torchreid package by file, so torchreid's other dependencies are not needed.
"""
import importlib.util
import json
import pathlib

import torch

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "train"


def torchreid_module(name, package="losses"):
    spec = importlib.util.find_spec("torchreid")
    root = pathlib.Path(next(iter(spec.submodule_search_locations)))
    path = root / "reid" / package / f"{name}.py"
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
    write("losses.json", cases)
    write("optimizers.json", optimizer_cases())
    write("schedules.json", schedule_cases())
    write("batch_norm.json", batch_norm_cases())
    write("instance_norm.json", instance_norm_cases())


def write(name, cases):
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / name).write_text(json.dumps({"torch": torch.__version__, "cases": cases}, indent=1))
    print("wrote", OUT / name)


def optimizer_cases():
    """Three steps of each optimiser Torchreid builds, on one parameter with given gradients.
    Gradients are small (≈1e-3), as late in training, so that Adam's ε and the weight decay
    (5e-4 × parameters ≈ 0.1) change the updates far beyond float32 rounding."""
    torch.manual_seed(1)
    start = torch.randn(5, 4) * 0.1
    grads = [torch.randn(5, 4) * 1e-3 for _ in range(3)]
    configs = [
        ("sgd", dict(lr=0.01, momentum=0.9, weight_decay=5e-4)),
        ("sgd", dict(lr=0.01, momentum=0.0, weight_decay=5e-4)),
        ("adam", dict(lr=3e-4, betas=(0.9, 0.999), weight_decay=5e-4)),
        ("amsgrad", dict(lr=3e-4, betas=(0.9, 0.999), weight_decay=5e-4, amsgrad=True)),
    ]
    cases = []
    for name, options in configs:
        param = torch.nn.Parameter(start.clone())
        optimizer = (torch.optim.SGD if name == "sgd" else torch.optim.Adam)([param], **options)
        steps = []
        for grad in grads:
            param.grad = grad.clone()
            optimizer.step()
            steps.append(param.detach().clone().tolist())
        cases.append({
            "optimizer": name,
            "lr": options["lr"],
            "momentum": options.get("momentum", 0.0),
            "weight_decay": options["weight_decay"],
            "start": start.tolist(),
            "grads": [g.tolist() for g in grads],
            "params": steps,
        })
    return cases


def batch_norm_cases():
    """Two train-mode steps of BatchNorm2d(3) from non-trivial running statistics: outputs,
    running statistics after each step, and the gradients of sum(output × r) for the first."""
    torch.manual_seed(2)
    bn = torch.nn.BatchNorm2d(3)
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([1.5, 0.5, -1.0]))
        bn.bias.copy_(torch.tensor([0.1, -0.2, 0.3]))
        bn.running_mean.copy_(torch.tensor([0.2, -0.1, 0.0]))
        bn.running_var.copy_(torch.tensor([1.2, 0.8, 2.0]))
    start = {k: v.clone() for k, v in bn.state_dict().items()}
    bn.train()
    steps = []
    for step in range(2):
        x = (torch.randn(4, 3, 5, 5) * torch.tensor([1.0, 2.0, 0.5]).view(1, 3, 1, 1) + 0.7).requires_grad_(True)
        r = torch.randn(4, 3, 5, 5)
        bn.zero_grad()
        out = bn(x)
        (out * r).sum().backward()
        steps.append({
            "input": x.detach().tolist(),
            "weights": r.tolist(),
            "output": out.detach().tolist(),
            "grad_input": x.grad.tolist(),
            "grad_weight": bn.weight.grad.tolist(),
            "grad_bias": bn.bias.grad.tolist(),
            "running_mean": bn.running_mean.tolist(),
            "running_var": bn.running_var.tolist(),
            "num_batches_tracked": int(bn.num_batches_tracked),
        })
    return [{
        "weight": start["weight"].tolist(),
        "bias": start["bias"].tolist(),
        "running_mean": start["running_mean"].tolist(),
        "running_var": start["running_var"].tolist(),
        "steps": steps,
    }]


def instance_norm_cases():
    """InstanceNorm2d(3, affine=True) as OSNet-IBN uses it: output and the gradients of
    sum(output × r) with respect to the input, weight and bias."""
    torch.manual_seed(3)
    norm = torch.nn.InstanceNorm2d(3, affine=True)
    with torch.no_grad():
        norm.weight.copy_(torch.tensor([1.5, 0.5, -1.0]))
        norm.bias.copy_(torch.tensor([0.1, -0.2, 0.3]))
    x = (torch.randn(4, 3, 5, 5) * 2 + 0.5).requires_grad_(True)
    r = torch.randn(4, 3, 5, 5)
    out = norm(x)
    (out * r).sum().backward()
    return [{
        "weight": norm.weight.detach().tolist(),
        "bias": norm.bias.detach().tolist(),
        "input": x.detach().tolist(),
        "weights": r.tolist(),
        "output": out.detach().tolist(),
        "grad_input": x.grad.tolist(),
        "grad_weight": norm.weight.grad.tolist(),
        "grad_bias": norm.bias.grad.tolist(),
    }]


def schedule_cases():
    """The learning rate of each of 60 epochs under Torchreid's schedulers."""
    configs = [
        ("single-step", dict(lr_scheduler="single_step", stepsize=20, gamma=0.1), [20]),
        ("multi-step", dict(lr_scheduler="multi_step", stepsize=[28, 50], gamma=0.1), [28, 50]),
        ("cosine", dict(lr_scheduler="cosine", max_epoch=60), []),
    ]
    build_lr_scheduler = torchreid_module("lr_scheduler", "optim").build_lr_scheduler
    cases = []
    for name, options, stepsize in configs:
        param = torch.nn.Parameter(torch.zeros(1))
        optimizer = torch.optim.Adam([param], lr=3e-4)
        scheduler = build_lr_scheduler(optimizer, **options)
        rates = []
        for _ in range(60):
            rates.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            scheduler.step()
        cases.append({
            "scheduler": name,
            "lr": 3e-4,
            "stepsize": stepsize,
            "gamma": options.get("gamma", 0.1),
            "epochs": 60,
            "rates": rates,
        })
    return cases


if __name__ == "__main__":
    main()
