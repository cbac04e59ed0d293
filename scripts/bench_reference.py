#!/usr/bin/env python3
"""Reference throughput: a Torchreid model through PyTorch (CPU or CUDA) and ONNX Runtime (CPU).

Prints one line per configuration in the form reidscope's `bench` uses:
  engine=pytorch model=osnet_ibn_x1_0 device=cpu precision=f32 batch=8 images_per_s=37.12

With --train, times one training step as Torchreid's ImageTripletEngine takes it (train-mode
forward, label-smoothed cross-entropy + batch-hard triplet, backward, Adam with weight decay)
on a random batch of batch/4 identities x 4, as `reidscope bench --train` does:
  engine=pytorch model=osnet_ibn_x1_0 device=cpu precision=f32 batch=32 train_images_per_s=9.1

--versus REIDSCOPE alternates each ONNX Runtime measurement with `REIDSCOPE bench` on the same
model, batch and threads, --rounds times, and prints the ratio of each pair and their median, so
that a machine whose speed drifts (shared cores, turbo) affects both sides alike:
  pair model=osnet_x0_25 batch=32 round=1 reidscope=512.30 onnxruntime=640.11 ratio=0.800
  median model=osnet_x0_25 batch=32 ratio=0.801 min=0.774 max=0.833 rounds=5

--device cuda times PyTorch alone on the GPU (synchronised after every step); --precision f16
runs inference on a half-precision copy of the model, and with --train mixed-precision steps
(torch.autocast to float16 with a GradScaler, PyTorch's own AMP).
"""
import argparse
import os
import re
import statistics
import subprocess
import tempfile
import time

import numpy as np
import torch
from torchreid.reid.models import build_model


def measure(run, batch, seconds, sync=lambda: None):
    run()  # warm-up
    run()
    sync()
    start = time.perf_counter()
    images = 0
    while images == 0 or time.perf_counter() - start < seconds:
        run()
        sync()
        images += batch
    return images / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="osnet_ibn_x1_0")
    parser.add_argument("--batch", default="1,8,32")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--height", type=int, default=256)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--engines", default="pytorch,onnxruntime")
    parser.add_argument("--train", action="store_true", help="time training steps (PyTorch)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                        help="cuda: PyTorch on the GPU (ONNX Runtime is not run)")
    parser.add_argument("--precision", choices=["f32", "f16"], default="f32",
                        help="f16: a half-precision model, or with --train PyTorch's AMP")
    parser.add_argument("--versus", metavar="REIDSCOPE",
                        help="a reidscope binary whose bench alternates with each ONNX Runtime measurement")
    parser.add_argument("--rounds", type=int, default=1, help="pairs per batch with --versus")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    if args.device == "cuda":
        torch.backends.cudnn.benchmark = True
        args.sync = torch.cuda.synchronize
    else:
        args.sync = lambda: None
    if args.train:
        train(args)
        return
    dtype = torch.float16 if args.precision == "f16" else torch.float32
    model = build_model(args.model, num_classes=751, pretrained=False).eval()
    batches = [int(b) for b in args.batch.split(",")]
    engines = args.engines.split(",") if args.device == "cpu" else ["pytorch"]

    def report(engine, batch, rate):
        print(f"engine={engine} model={args.model} device={args.device} precision={args.precision} "
              f"batch={batch} images_per_s={rate:.2f}", flush=True)

    if "pytorch" in engines:
        model.to(args.device, dtype)
        for batch in batches:
            x = torch.randn(batch, 3, args.height, args.width, device=args.device, dtype=dtype)
            with torch.no_grad():
                rate = measure(lambda: model(x), batch, args.seconds, args.sync)
            report("pytorch", batch, rate)

    # ONNX Runtime runs on the CPU in f32 only, where the model above stayed as it was built.
    if "onnxruntime" in engines and args.precision == "f32":
        import onnxruntime as ort
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "model.onnx")
            dummy = torch.randn(1, 3, args.height, args.width)
            torch.onnx.export(model, dummy, path, input_names=["input"], output_names=["features"],
                              dynamic_axes={"input": {0: "n"}, "features": {0: "n"}}, opset_version=17,
                              dynamo=False)
            options = ort.SessionOptions()
            options.intra_op_num_threads = args.threads
            options.inter_op_num_threads = 1
            session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
            for batch in batches:
                x = np.random.default_rng(0).standard_normal((batch, 3, args.height, args.width), dtype=np.float32)
                run = lambda: session.run(None, {"input": x})
                if args.versus:
                    pairs(args, batch, lambda: measure(run, batch, args.seconds))
                else:
                    report("onnxruntime", batch, measure(run, batch, args.seconds))


def reidscope_rate(args, batch):
    """images/s of `reidscope bench` on the CPU for the same model, batch, threads and size."""
    command = [args.versus, "bench", "--model", args.model, "--device", "cpu", "--batch", str(batch),
               "--threads", str(args.threads), "--seconds", str(args.seconds),
               "--height", str(args.height), "--width", str(args.width)]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    rates = re.findall(r"images_per_s=([0-9.]+)", out)
    if len(rates) != 1:
        raise SystemExit(f"expected one images_per_s from {' '.join(command)}, got:\n{out}")
    return float(rates[0])


def pairs(args, batch, onnxruntime_rate):
    """--rounds pairs of reidscope then ONNX Runtime at `batch`, each pair's ratio, their median."""
    ratios = []
    for round_ in range(1, args.rounds + 1):
        ours = reidscope_rate(args, batch)
        theirs = onnxruntime_rate()
        ratios.append(ours / theirs)
        print(f"pair model={args.model} batch={batch} round={round_} reidscope={ours:.2f} "
              f"onnxruntime={theirs:.2f} ratio={ratios[-1]:.3f}", flush=True)
    print(f"median model={args.model} batch={batch} ratio={statistics.median(ratios):.3f} "
          f"min={min(ratios):.3f} max={max(ratios):.3f} rounds={len(ratios)}", flush=True)


def train(args):
    from torchreid.reid.losses import CrossEntropyLoss, TripletLoss
    from torchreid.reid.optim import build_optimizer

    mixed = args.precision == "f16"
    for batch in [int(b) for b in args.batch.split(",")]:
        ids = max(batch // 4, 1)
        model = build_model(args.model, num_classes=ids, loss="triplet", pretrained=False)
        model = model.to(args.device).train()
        optim = build_optimizer(model, optim="adam", lr=3e-4, weight_decay=5e-4, adam_beta2=0.999)
        softmax = CrossEntropyLoss(num_classes=ids, use_gpu=args.device == "cuda", label_smooth=True)
        triplet = TripletLoss(margin=0.3)
        scaler = torch.amp.GradScaler(args.device, enabled=mixed)
        x = torch.randn(batch, 3, args.height, args.width, device=args.device)
        labels = (torch.arange(batch) // 4 % ids).to(args.device)

        def step():
            with torch.autocast(args.device, dtype=torch.float16, enabled=mixed):
                outputs, features = model(x)
            loss = triplet(features.float(), labels) + softmax(outputs.float(), labels)
            optim.zero_grad()
            scaler.scale(loss).backward()
            scaler.step(optim)
            scaler.update()

        rate = measure(step, batch, args.seconds, args.sync)
        precision = "mixed" if mixed else "f32"
        print(f"engine=pytorch model={args.model} device={args.device} precision={precision} "
              f"batch={batch} train_images_per_s={rate:.2f}", flush=True)


if __name__ == "__main__":
    main()
