//! Market-1501 metrics equal Torchreid's `evaluate_rank` (and mINP FastReID's) on fixtures made
//! by scripts/make_eval_fixtures.py.

mod common;

use common::*;
use reidscope::eval::rank::{Label, evaluate_market};

fn labels(pids: &str, camids: &str) -> Vec<Label> {
    let (pids, _) = read_npy::<i64>(&fixture(pids));
    let (camids, _) = read_npy::<i64>(&fixture(camids));
    pids.into_iter()
        .zip(camids)
        .map(|(pid, camid)| Label { pid, camid })
        .collect()
}

#[test]
fn market_protocol_matches_torchreid_evaluate_rank() {
    let (distances, shape) = read_npy::<f32>(&fixture("eval/distmat.npy"));
    let queries = labels("eval/q_pids.npy", "eval/q_camids.npy");
    let gallery = labels("eval/g_pids.npy", "eval/g_camids.npy");
    assert_eq!(shape, [queries.len(), gallery.len()]);
    let reference: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("eval/reference.json")).unwrap())
            .unwrap();
    let expected_cmc: Vec<f64> = reference["cmc"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();

    let (metrics, _) = evaluate_market(&distances, &queries, &gallery, expected_cmc.len()).unwrap();
    // Torchreid averages the CMC in float32; our f64 values agree to its rounding.
    for (rank, (got, want)) in metrics.cmc.iter().zip(&expected_cmc).enumerate() {
        assert!(
            (got - want).abs() < 1e-6,
            "CMC rank {}: {got} vs {want}",
            rank + 1
        );
    }
    let map = reference["mAP"].as_f64().unwrap();
    assert!(
        (metrics.map - map).abs() < 1e-9,
        "mAP {} vs {map}",
        metrics.map
    );
    let minp = reference["mINP"].as_f64().unwrap();
    assert!(
        (metrics.minp - minp).abs() < 1e-9,
        "mINP {} vs {minp}",
        metrics.minp
    );
}
