#!/usr/bin/env python3
"""Evaluation speed, whole process included: `reidscope metrics` vs a vectorised NumPy
implementation vs Torchreid (`compute_distance_matrix` + `evaluate_rank`), on one synthetic
Market-1501-sized problem (3368 queries x 15913 gallery x 512-d, 751 ids, 6 cameras).

Each contender runs as its own process reading the same .npy files; the wall time of the
whole process is measured (best of --repeats; Torchreid once). Torchreid's Cython evaluator is
not in its PyPI package; build it from the upstream source as scripts/README.md shows. Usage:

    python scripts/bench_metrics.py --reidscope target/release/reidscope [--threads 2]
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

NUMPY_EVAL = r'''
import sys, json
import numpy as np
d = sys.argv[1]
qf, gf = np.load(d + "/qf.npy"), np.load(d + "/gf.npy")
q_pids, g_pids = np.load(d + "/q_pids.npy"), np.load(d + "/g_pids.npy")
q_cam, g_cam = np.load(d + "/q_camids.npy"), np.load(d + "/g_camids.npy")
dist = (qf ** 2).sum(1)[:, None] + (gf ** 2).sum(1)[None, :] - 2.0 * (qf @ gf.T)
order = np.argsort(dist, axis=1)
matches = g_pids[order] == q_pids[:, None]
keep = ~(matches & (g_cam[order] == q_cam[:, None]))
cmc_all, aps = [], []
for q in range(len(qf)):
    raw = matches[q][keep[q]]
    if not raw.any():
        continue
    cum = raw.cumsum()
    cmc = np.minimum(cum, 1)[:50]
    cmc_all.append(cmc)
    hits = np.flatnonzero(raw)
    aps.append(((np.arange(len(hits)) + 1) / (hits + 1)).mean())
print(json.dumps({"mAP": float(np.mean(aps)), "rank1": float(np.mean([c[0] for c in cmc_all]))}))
'''

TORCHREID_EVAL = r'''
import sys, json, warnings
warnings.filterwarnings("ignore")
import numpy as np, torch
from torchreid.reid.metrics import compute_distance_matrix, evaluate_rank
from torchreid.reid.metrics import rank as rank_module
d = sys.argv[1]
qf, gf = torch.from_numpy(np.load(d + "/qf.npy")), torch.from_numpy(np.load(d + "/gf.npy"))
labels = [np.load(d + f"/{n}.npy") for n in ("q_pids", "g_pids", "q_camids", "g_camids")]
dist = compute_distance_matrix(qf, gf, "euclidean").numpy()
use_cython = sys.argv[2] == "cython"
if use_cython and not rank_module.IS_CYTHON_AVAI:
    sys.exit("Torchreid's Cython evaluator is not built (see scripts/README.md)")
cmc, mAP = evaluate_rank(dist, *labels, max_rank=50, use_cython=use_cython)
print(json.dumps({"mAP": float(mAP), "rank1": float(cmc[0])}))
'''


def make_problem(folder, queries=3368, gallery=15913, dim=512, ids=751, cams=6, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((ids, dim)).astype(np.float32)
    for side, n in (("q", queries), ("g", gallery)):
        pids = rng.integers(0, ids, n)
        feats = centers[pids] + 2.0 * rng.standard_normal((n, dim)).astype(np.float32)
        np.save(os.path.join(folder, f"{side}f.npy"), feats.astype(np.float32))
        np.save(os.path.join(folder, f"{side}_pids.npy"), pids.astype(np.int64))
        np.save(os.path.join(folder, f"{side}_camids.npy"), rng.integers(0, cams, n).astype(np.int64))


def timed(cmd, env, repeats):
    best, out = None, None
    for _ in range(repeats):
        start = time.perf_counter()
        result = subprocess.run(cmd, env=env, capture_output=True, text=True)
        elapsed = time.perf_counter() - start
        if result.returncode != 0:
            sys.exit(f"{cmd[0]} failed:\n{result.stderr}")
        out = result.stdout.strip() or result.stderr.strip().splitlines()[-1]
        best = elapsed if best is None else min(best, elapsed)
    return best, out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--reidscope", required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "RAYON_NUM_THREADS"):
        env[var] = str(args.threads)
    with tempfile.TemporaryDirectory() as d:
        make_problem(d)
        out = os.path.join(d, "metrics.json")
        rows = []
        f = lambda n: os.path.join(d, n + ".npy")
        cmd = [args.reidscope, "metrics", "--qf", f("qf"), "--gf", f("gf"), "--q-pids", f("q_pids"),
               "--g-pids", f("g_pids"), "--q-camids", f("q_camids"), "--g-camids", f("g_camids"), "--out", out]
        rows.append(("reidscope metrics",) + timed(cmd, env, args.repeats))
        rows.append(("NumPy (BLAS matmul + argsort)",) + timed([sys.executable, "-c", NUMPY_EVAL, d], env, args.repeats))
        for evaluator in ("cython", "python"):
            rows.append((f"Torchreid distance + evaluate_rank ({evaluator})",)
                        + timed([sys.executable, "-c", TORCHREID_EVAL, d, evaluator], env, 1))
    base = rows[0][1]
    print("| implementation | seconds (whole process) | vs reidscope | output |")
    print("|---|---|---|---|")
    for name, seconds, output in rows:
        print(f"| {name} | {seconds:.2f} | {seconds / base:.1f}x | {output} |")


if __name__ == "__main__":
    main()
