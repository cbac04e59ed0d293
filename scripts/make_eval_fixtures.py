#!/usr/bin/env python3
"""Evaluation fixtures: Torchreid's distances, `re_ranking` and `evaluate_rank` on small
random problems with a planted identity structure.

Writes tests/fixtures/eval/:
  market/  qf.npy gf.npy (float32 [Q, D], [G, D]), q_pids.npy g_pids.npy (int64),
           q_camids.npy g_camids.npy (int32, to exercise both integer widths)
  cuhk03/  the same files for a gallery with one image per identity, where CUHK03's random
           single-shot draws cannot change the result
  reference.json  per case: CMC (max_rank 20), mAP (Torchreid) and mINP (FastReID's definition)

Cases: euclidean, cosine, euclidean on L2-normalised features, k-reciprocal re-ranking
(k1=20, k2=6, lambda=0.3) after euclidean and after cosine, FastReID's alpha-weighted query
expansion (k=5, alpha=3) before cosine, and the CUHK03 protocol.
"""
import json
import os

import numpy as np
import torch
import torch.nn.functional as F
from torchreid.reid.metrics import compute_distance_matrix, evaluate_rank
from torchreid.reid.utils import re_ranking

OUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "fixtures", "eval")
MAX_RANK = 20


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


def aqe_fastreid(query_feat, gallery_feat, qe_times=1, qe_k=5, alpha=3.0):
    """FastReID's fastreid/evaluation/query_expansion.py `aqe`."""
    num_query = query_feat.shape[0]
    all_feat = torch.cat((query_feat, gallery_feat), dim=0)
    norm_feat = F.normalize(all_feat, p=2, dim=1)
    all_feat = all_feat.numpy()
    for _ in range(qe_times):
        all_feat_list = []
        sims = torch.mm(norm_feat, norm_feat.t()).numpy()
        for sim in sims:
            init_rank = np.argpartition(-sim, range(1, qe_k + 1))
            weights = sim[init_rank[:qe_k]].reshape((-1, 1))
            weights = np.power(weights, alpha)
            all_feat_list.append(np.mean(all_feat[init_rank[:qe_k], :] * weights, axis=0))
        all_feat = np.stack(all_feat_list, axis=0)
        norm_feat = F.normalize(torch.from_numpy(all_feat), p=2, dim=1)
    return torch.from_numpy(all_feat[:num_query]), torch.from_numpy(all_feat[num_query:])


def save(folder, qf, gf, q_pids, g_pids, q_camids, g_camids):
    os.makedirs(folder, exist_ok=True)
    np.save(os.path.join(folder, "qf.npy"), qf.astype(np.float32))
    np.save(os.path.join(folder, "gf.npy"), gf.astype(np.float32))
    np.save(os.path.join(folder, "q_pids.npy"), q_pids.astype(np.int64))
    np.save(os.path.join(folder, "g_pids.npy"), g_pids.astype(np.int64))
    np.save(os.path.join(folder, "q_camids.npy"), q_camids.astype(np.int32))
    np.save(os.path.join(folder, "g_camids.npy"), g_camids.astype(np.int32))


def scores(distmat, labels, cuhk03=False):
    cmc, mAP = evaluate_rank(distmat, *labels, max_rank=MAX_RANK, use_metric_cuhk03=cuhk03, use_cython=False)
    return {"cmc": [float(x) for x in cmc], "mAP": float(mAP), "mINP": minp_fastreid(distmat, *labels)}


def main():
    rng = np.random.default_rng(3)
    ids, dim = 40, 32
    centers = rng.standard_normal((ids, dim))

    def sample(n):
        pids = rng.integers(0, ids, n)
        camids = rng.integers(0, 6, n)
        feats = centers[pids] + rng.standard_normal((n, dim)) * 1.4
        return feats.astype(np.float32), pids, camids

    qf, q_pids, q_camids = sample(60)
    gf, g_pids, g_camids = sample(300)
    save(os.path.join(OUT, "market"), qf, gf, q_pids, g_pids, q_camids, g_camids)
    labels = (q_pids, g_pids, q_camids, g_camids)
    q, g = torch.from_numpy(qf), torch.from_numpy(gf)

    def dist(a, b, metric):
        return compute_distance_matrix(a, b, metric).numpy()

    def reranked(a, b, metric):
        return re_ranking(dist(a, b, metric), dist(a, a, metric), dist(b, b, metric))

    cases = {
        "euclidean": scores(dist(q, g, "euclidean"), labels),
        "cosine": scores(dist(q, g, "cosine"), labels),
        "euclidean_normalized": scores(dist(F.normalize(q), F.normalize(g), "euclidean"), labels),
        "rerank_euclidean": scores(reranked(q, g, "euclidean"), labels),
        "rerank_cosine": scores(reranked(q, g, "cosine"), labels),
    }
    aq, ag = aqe_fastreid(q, g)
    cases["aqe_cosine"] = scores(dist(aq, ag, "cosine"), labels)

    # CUHK03: every identity once in the gallery (camera 1), queries from camera 0.
    c_gids = np.arange(ids)
    c_gf = (centers[c_gids] + rng.standard_normal((ids, dim)) * 1.4).astype(np.float32)
    c_qpids = rng.integers(0, ids, 50)
    c_qf = (centers[c_qpids] + rng.standard_normal((50, dim)) * 1.4).astype(np.float32)
    c_labels = (c_qpids, c_gids, np.zeros(50, np.int64), np.ones(ids, np.int64))
    save(os.path.join(OUT, "cuhk03"), c_qf, c_gf, *c_labels)
    cases["cuhk03"] = scores(dist(torch.from_numpy(c_qf), torch.from_numpy(c_gf), "euclidean"), c_labels, cuhk03=True)

    with open(os.path.join(OUT, "reference.json"), "w") as f:
        json.dump(cases, f, indent=1)


if __name__ == "__main__":
    main()
