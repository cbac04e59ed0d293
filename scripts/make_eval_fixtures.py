#!/usr/bin/env python3
"""Evaluation fixtures: Torchreid's distance and `evaluate_rank` on a small random problem.

Writes tests/fixtures/eval/: distmat.npy (float32 [Q, G], Torchreid's squared euclidean
distance of random features with a planted identity structure), q_pids/g_pids/q_camids/g_camids
(.npy int64), and reference.json with Torchreid's CMC (max_rank 20) and mAP (Market-1501
protocol) and mINP computed as FastReID does.
"""
import json
import os

import numpy as np
import torch
from torchreid.reid.metrics import compute_distance_matrix, evaluate_rank

OUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "fixtures", "eval")


def minp_fastreid(distmat, q_pids, g_pids, q_camids, g_camids):
    indices = np.argsort(distmat, axis=1, kind="stable")
    inps = []
    for q in range(distmat.shape[0]):
        order = indices[q]
        keep = ~((g_pids[order] == q_pids[q]) & (g_camids[order] == q_camids[q]))
        raw_cmc = (g_pids[order] == q_pids[q]).astype(np.int32)[keep]
        if not raw_cmc.any():
            continue
        cmc = raw_cmc.cumsum()
        last = np.max(np.where(raw_cmc == 1))
        inps.append(cmc[last] / (last + 1.0))
    return float(np.mean(inps))


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(3)
    ids, dim = 40, 32
    centers = rng.standard_normal((ids, dim))
    def sample(n):
        pids = rng.integers(0, ids, n)
        camids = rng.integers(0, 6, n)
        feats = centers[pids] + rng.standard_normal((n, dim)) * 1.4
        return feats.astype(np.float32), pids.astype(np.int64), camids.astype(np.int64)
    qf, q_pids, q_camids = sample(60)
    gf, g_pids, g_camids = sample(300)
    distmat = compute_distance_matrix(torch.from_numpy(qf), torch.from_numpy(gf), "euclidean").numpy()
    cmc, mAP = evaluate_rank(distmat, q_pids, g_pids, q_camids, g_camids, max_rank=20, use_cython=False)
    np.save(os.path.join(OUT, "distmat.npy"), distmat.astype(np.float32))
    for name, arr in [("q_pids", q_pids), ("g_pids", g_pids), ("q_camids", q_camids), ("g_camids", g_camids)]:
        np.save(os.path.join(OUT, f"{name}.npy"), arr)
    reference = {"cmc": [float(x) for x in cmc], "mAP": float(mAP),
                 "mINP": minp_fastreid(distmat, q_pids, g_pids, q_camids, g_camids)}
    with open(os.path.join(OUT, "reference.json"), "w") as f:
        json.dump(reference, f, indent=1)


if __name__ == "__main__":
    main()
