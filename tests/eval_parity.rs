//! Metrics equal Torchreid's `evaluate_rank` (after its distances, `re_ranking`, or FastReID's
//! query expansion; mINP as FastReID defines it) on fixtures made by
//! scripts/make_eval_fixtures.py — through the library and through `reidscope metrics`.

mod common;

use std::sync::atomic::AtomicBool;

use burn::tensor::Device;
use common::*;
use reidscope::backend::Precision;
use reidscope::eval::RerankParams;
use reidscope::eval::{Distances, EvalOptions, Label, Metric, Metrics, Protocol, evaluate};
use reidscope::io::{read_npy_ids, read_npy_matrix};
use reidscope::report::MetricsFile;

struct Problem {
    qf: Vec<f32>,
    gf: Vec<f32>,
    dim: usize,
    queries: Vec<Label>,
    gallery: Vec<Label>,
}

fn labels(dir: &str, side: &str) -> Vec<Label> {
    let pids = read_npy_ids(&fixture(&format!("eval/{dir}/{side}_pids.npy"))).unwrap();
    let camids = read_npy_ids(&fixture(&format!("eval/{dir}/{side}_camids.npy"))).unwrap();
    pids.into_iter()
        .zip(camids)
        .map(|(pid, camid)| Label { pid, camid })
        .collect()
}

fn problem(dir: &str) -> Problem {
    let (qf, _, dim) = read_npy_matrix(&fixture(&format!("eval/{dir}/qf.npy"))).unwrap();
    let (gf, _, _) = read_npy_matrix(&fixture(&format!("eval/{dir}/gf.npy"))).unwrap();
    Problem {
        qf,
        gf,
        dim,
        queries: labels(dir, "q"),
        gallery: labels(dir, "g"),
    }
}

fn reference(case: &str) -> MetricsFile {
    let text = std::fs::read_to_string(fixture("eval/reference.json")).unwrap();
    let all: serde_json::Value = serde_json::from_str(&text).unwrap();
    let case = &all[case];
    let floats = |v: &serde_json::Value| v.as_f64().unwrap();
    MetricsFile {
        map: floats(&case["mAP"]),
        minp: floats(&case["mINP"]),
        cmc: case["cmc"].as_array().unwrap().iter().map(floats).collect(),
        num_valid_queries: 0,
        num_queries: 0,
        num_gallery: 0,
        metric: String::new(),
        normalize: false,
        protocol: String::new(),
        rerank: false,
        aqe: false,
        label: String::new(),
    }
}

/// CMC within Torchreid's float32 rounding, mAP and mINP within `tolerance`.
fn assert_close(case: &str, got_cmc: &[f64], got_map: f64, got_minp: f64, tolerance: f64) {
    let want = reference(case);
    assert_eq!(got_cmc.len(), want.cmc.len(), "{case}: CMC length");
    for (rank, (got, want)) in got_cmc.iter().zip(&want.cmc).enumerate() {
        assert!(
            (got - want).abs() < 1e-6,
            "{case}: CMC rank {}: {got} vs {want}",
            rank + 1
        );
    }
    assert!(
        (got_map - want.map).abs() < tolerance,
        "{case}: mAP {got_map} vs {}",
        want.map
    );
    assert!(
        (got_minp - want.minp).abs() < tolerance,
        "{case}: mINP {got_minp} vs {}",
        want.minp
    );
}

fn run(p: &Problem, options: &EvalOptions) -> Metrics {
    run_on(p, options, None)
}

fn run_on(p: &Problem, options: &EvalOptions, device: Option<&Device>) -> Metrics {
    let distances = Distances::new(&p.qf, &p.gf, p.dim, options, device).unwrap();
    evaluate(
        &distances,
        &p.queries,
        &p.gallery,
        options,
        &mut |_, _| {},
        &AtomicBool::new(false),
    )
    .unwrap()
    .metrics
}

fn options(metric: Metric) -> EvalOptions {
    EvalOptions {
        metric,
        max_rank: 20,
        ..EvalOptions::default()
    }
}

#[test]
fn market_protocol_matches_torchreid_for_each_metric() {
    let p = problem("market");
    for (case, options) in [
        ("euclidean", options(Metric::Euclidean)),
        ("cosine", options(Metric::Cosine)),
        (
            "euclidean_normalized",
            EvalOptions {
                normalize: true,
                ..options(Metric::Euclidean)
            },
        ),
    ] {
        let m = run(&p, &options);
        assert_close(case, &m.cmc, m.map, m.minp, 1e-6);
    }
}

#[test]
fn rerank_matches_torchreid_re_ranking() {
    let p = problem("market");
    for (case, metric) in [
        ("rerank_euclidean", Metric::Euclidean),
        ("rerank_cosine", Metric::Cosine),
    ] {
        let options = EvalOptions {
            rerank: Some(RerankParams::default()),
            ..options(metric)
        };
        let m = run(&p, &options);
        assert_close(case, &m.cmc, m.map, m.minp, 1e-4);
    }
}

#[test]
fn distances_on_wgpu_give_the_same_metrics() {
    let Some(backend) = wgpu_backend(Precision::F32) else {
        return;
    };
    let p = problem("market");
    for (case, rerank) in [
        ("euclidean", None),
        ("rerank_euclidean", Some(RerankParams::default())),
    ] {
        let options = EvalOptions {
            rerank,
            ..options(Metric::Euclidean)
        };
        let m = run_on(&p, &options, Some(&backend.device));
        assert_close(case, &m.cmc, m.map, m.minp, 1e-4);
    }
}

#[test]
fn query_expansion_matches_fastreid_aqe() {
    let p = problem("market");
    let m = run(
        &p,
        &EvalOptions {
            aqe: true,
            ..options(Metric::Cosine)
        },
    );
    assert_close("aqe_cosine", &m.cmc, m.map, m.minp, 1e-5);
}

#[test]
fn cuhk03_protocol_matches_torchreid_on_a_single_shot_gallery() {
    let p = problem("cuhk03");
    let m = run(
        &p,
        &EvalOptions {
            protocol: Protocol::Cuhk03,
            ..options(Metric::Euclidean)
        },
    );
    assert_close("cuhk03", &m.cmc, m.map, m.minp, 1e-6);
}

#[test]
fn metrics_command_writes_the_same_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("metrics.json");
    let csv = dir.path().join("per_query.csv");
    let file = |side: &str, name: &str| fixture(&format!("eval/market/{side}{name}.npy"));
    let mut args: Vec<std::ffi::OsString> = vec!["metrics".into()];
    for (flag, path) in [
        ("--qf", file("q", "f")),
        ("--gf", file("g", "f")),
        ("--q-pids", file("q", "_pids")),
        ("--g-pids", file("g", "_pids")),
        ("--q-camids", file("q", "_camids")),
        ("--g-camids", file("g", "_camids")),
        ("--out", out.clone()),
        ("--per-query", csv.clone()),
    ] {
        args.push(flag.into());
        args.push(path.into());
    }
    for extra in ["--rerank", "--max-rank", "20"] {
        args.push(extra.into());
    }
    let output = reidscope(&args);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let written = MetricsFile::read(&out).unwrap();
    assert_close(
        "rerank_euclidean",
        &written.cmc,
        written.map,
        written.minp,
        1e-4,
    );
    assert_eq!(written.num_queries, 60);
    assert!(written.rerank);

    let lines: Vec<String> = std::fs::read_to_string(&csv)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(
        lines[0],
        "query,name,pid,camid,ap,inp,first_hit_rank,relevant"
    );
    assert_eq!(lines.len(), 61);
    let aps: Vec<f64> = lines[1..]
        .iter()
        .filter_map(|l| l.split(',').nth(4).and_then(|v| v.parse().ok()))
        .collect();
    assert_eq!(aps.len(), written.num_valid_queries);
    let mean = aps.iter().sum::<f64>() / aps.len() as f64;
    assert!((mean - written.map).abs() < 1e-12);
}

#[test]
fn metrics_command_rejects_mismatched_inputs_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.json");
    let m = |name: &str| {
        fixture(&format!("eval/market/{name}.npy"))
            .display()
            .to_string()
    };
    // Gallery pids given for the queries: lengths disagree.
    let line = format!(
        "metrics --qf {} --gf {} --q-pids {} --g-pids {} --q-camids {} --g-camids {} --out {}",
        m("qf"),
        m("gf"),
        m("g_pids"),
        m("g_pids"),
        m("q_camids"),
        m("g_camids"),
        out.display()
    );
    let output = reidscope(&line.split_whitespace().collect::<Vec<_>>());
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("g_pids.npy: 300 ids, but")
            && stderr.contains("qf.npy has 60 feature rows"),
        "{stderr}"
    );
    assert!(!out.exists());
    // Features given as ids: wrong dtype named.
    let line = line.replace(
        &format!("--q-pids {}", m("g_pids")),
        &format!("--q-pids {}", m("qf")),
    );
    let output = reidscope(&line.split_whitespace().collect::<Vec<_>>());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("expected a 1-D array of ids, got shape [60, 32]"),
        "{stderr}"
    );
}
