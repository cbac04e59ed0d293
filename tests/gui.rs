//! The app driven headless through egui_kittest: what it shows is checked against the
//! library's own numbers for the same run. Features are colour histograms of the bundled demo
//! dataset (quick to compute in a test build); the network path is covered by the CLI tests,
//! and here by a small network's run for the model export.

mod common;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use eframe::egui;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};

use reidscope::app::{Action, AppOptions, ReidApp};
use reidscope::backend::{DeviceChoice, Precision};
use reidscope::data::DatasetKind;
use reidscope::data::image::Preprocess;
use reidscope::demo::{DEMO_DATASET, DEMO_INPUT, DEMO_WEIGHTS, bundled};
use reidscope::eval::compare::Comparison;
use reidscope::eval::drift::FeatureDrift;
use reidscope::eval::inspect::inspect;
use reidscope::eval::{EvalOptions, Metric, ranked_list};
use reidscope::models::ModelName;
use reidscope::run::{FeatureSource, NetworkSource, Run, RunSpec, execute};
use reidscope::train::TrainSettings;

fn spec(root: PathBuf, metric: Metric) -> RunSpec {
    RunSpec {
        kind: DatasetKind::Market1501,
        root,
        source: FeatureSource::ColourHistogram,
        device: DeviceChoice::Cpu,
        preprocess: Preprocess::default(),
        batch: 32,
        cache: None,
        eval: EvalOptions {
            metric,
            ..EvalOptions::default()
        },
    }
}

fn demo_spec(metric: Metric) -> RunSpec {
    spec(bundled(DEMO_DATASET), metric)
}

/// The same run computed by the library alone.
fn reference(spec: &RunSpec) -> Run {
    execute(spec, &mut |_| {}, &AtomicBool::new(false)).expect("reference run")
}

fn app(spec: RunSpec) -> Harness<'static, ReidApp> {
    Harness::builder()
        .with_size(egui::vec2(1600.0, 1000.0))
        .build_eframe(move |cc| ReidApp::new(&cc.egui_ctx, AppOptions { spec, tour: None }))
}

/// Steps the app until a node whose label contains `text` exists.
fn wait_for(harness: &mut Harness<'static, ReidApp>, text: &str) {
    let start = Instant::now();
    loop {
        harness.step();
        if harness.query_all_by_label_contains(text).next().is_some() {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "nothing labelled `{text}` appeared"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn settle(harness: &mut Harness<'static, ReidApp>) {
    for _ in 0..4 {
        harness.step();
    }
}

fn heading(run: &Run, q: usize) -> String {
    let query = &run.queries[q];
    format!("Query {q}: pid {} · camera c{}", query.pid, query.camid + 1)
}

/// Correct entries among the top `k` of query `q`, junk removed.
fn correct_in_top(run: &Run, q: usize, k: usize) -> usize {
    let mut row = Vec::new();
    run.distances.rows(q..q + 1, &mut row);
    ranked_list(&row, run.query_labels[q], &run.gallery_labels, k, false)
        .iter()
        .filter(|e| e.matches)
        .count()
}

#[test]
fn opens_on_the_worst_query_and_navigates_with_the_keyboard() {
    let spec = demo_spec(Metric::Euclidean);
    let mut harness = app(spec.clone());
    let run = reference(&spec);
    let order = run.evaluation.worst_first();
    wait_for(&mut harness, "Ranked gallery, top 20");
    let worst = order[0];
    harness.get_by_label_contains(&heading(&run, worst));
    let outcome = run.evaluation.per_query[worst].expect("worst query is scored");
    harness.get_by_label_contains(&format!(
        "AP {:.1}% · first hit at rank {} · {} true matches",
        outcome.ap * 100.0,
        outcome.first_hit + 1,
        outcome.relevant
    ));
    harness.get_by_label(&format!(
        "Ranked gallery, top 20 ({} correct)",
        correct_in_top(&run, worst, 20)
    ));
    harness.get_by_label(&format!(
        "True matches ({}) and their ranks",
        outcome.relevant
    ));
    let m = &run.metrics;
    harness.get_by_label_contains(&format!(
        "R1 {:.1}% · mAP {:.1}% · mINP {:.1}%",
        m.rank(1) * 100.0,
        m.map * 100.0,
        m.minp * 100.0
    ));

    harness.key_press(egui::Key::ArrowRight);
    settle(&mut harness);
    harness.get_by_label_contains(&heading(&run, order[1]));
    harness.key_press(egui::Key::End);
    settle(&mut harness);
    harness.get_by_label_contains(&heading(&run, order[order.len() - 1]));
    harness.key_press(egui::Key::Home);
    settle(&mut harness);
    harness.get_by_label_contains(&heading(&run, worst));

    harness
        .get_by_role_and_label(egui::Role::Slider, "top k")
        .set_value_accesskit(50.0);
    settle(&mut harness);
    harness.get_by_label(&format!(
        "Ranked gallery, top 50 ({} correct)",
        correct_in_top(&run, worst, 50)
    ));
}

#[test]
fn metric_toggle_recomputes_and_compare_shows_the_changes() {
    let euclidean = demo_spec(Metric::Euclidean);
    let mut harness = app(euclidean.clone());
    let (a, b) = (reference(&euclidean), reference(&demo_spec(Metric::Cosine)));
    wait_for(&mut harness, "Ranked gallery, top 20");
    harness.get_by_label("cosine").click();
    let m = &b.metrics;
    wait_for(
        &mut harness,
        &format!(
            "R1 {:.1}% · mAP {:.1}% · mINP {:.1}%",
            m.rank(1) * 100.0,
            m.map * 100.0,
            m.minp * 100.0
        ),
    );
    harness.get_by_label("Compare").click();
    settle(&mut harness);
    let top1 = |run: &Run, q: usize| {
        let mut row = Vec::new();
        run.distances.rows(q..q + 1, &mut row);
        let first = ranked_list(&row, run.query_labels[q], &run.gallery_labels, 1, false)[0];
        (first.gallery, first.matches)
    };
    let queries = a.queries.len();
    let changed = (0..queries)
        .filter(|&q| top1(&a, q).0 != top1(&b, q).0)
        .count();
    let lost = (0..queries)
        .filter(|&q| top1(&a, q).1 && !top1(&b, q).1)
        .count();
    let gained = (0..queries)
        .filter(|&q| !top1(&a, q).1 && top1(&b, q).1)
        .count();
    harness.get_by_label_contains(&format!(
        "top-1 changed for {changed} of {queries} queries · B lost a correct top-1 on {lost} and gained one on {gained}"
    ));
    // Back to euclidean: the finished run is selected again, nothing is recomputed.
    harness.get_by_label("Queries").click();
    settle(&mut harness);
    harness.get_by_label("euclidean").click();
    settle(&mut harness);
    let m = &a.metrics;
    harness.get_by_label_contains(&format!(
        "R1 {:.1}% · mAP {:.1}%",
        m.rank(1) * 100.0,
        m.map * 100.0
    ));
}

#[test]
fn dataset_browser_filters_and_shows_details() {
    let spec = demo_spec(Metric::Euclidean);
    let dataset = reidscope::data::load_dataset(spec.kind, &spec.root).unwrap();
    let mut harness = app(spec);
    harness.get_by_label("Dataset").click();
    let gallery = &dataset.split.gallery;
    wait_for(&mut harness, &format!("Gallery ({})", gallery.len()));
    let pid = gallery[gallery.len() / 2].pid;
    let expected: Vec<_> = gallery.iter().filter(|s| s.pid == pid).collect();
    harness.get_by_label("pid").click();
    settle(&mut harness);
    harness.get_by_label("pid").type_text(&pid.to_string());
    settle(&mut harness);
    harness.get_by_label_contains(&format!("{} images · 1 identities", expected.len()));
    let name = expected[0]
        .path
        .file_name()
        .unwrap()
        .to_string_lossy()
        .to_string();
    harness.get_by_label_contains(&name).click();
    settle(&mut harness);
    harness.get_by_label("Copy path");
    harness.get_by_label(&expected[0].path.display().to_string());
}

/// An image file dropped on the window.
#[derive(Debug)]
struct Dropped(PathBuf);

impl egui::DroppedFile for Dropped {
    fn path(&self) -> &Path {
        &self.0
    }

    fn bytes(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.0).map_err(|e| e.to_string())
    }
}

#[test]
fn a_dropped_image_queries_the_gallery() {
    let spec = demo_spec(Metric::Euclidean);
    let dataset = reidscope::data::load_dataset(spec.kind, &spec.root).unwrap();
    let mut harness = app(spec);
    wait_for(&mut harness, "Ranked gallery, top 20");
    // A copy of a gallery image under another name: that image must come first, at distance 0.
    let original = &dataset.split.gallery[100];
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("outside.jpg");
    std::fs::copy(&original.path, &copy).unwrap();
    harness
        .input_mut()
        .dropped_files
        .push(std::sync::Arc::new(Dropped(copy)));
    wait_for(&mut harness, "External query");
    let name = original.path.file_name().unwrap().to_string_lossy();
    harness.get_by_label_contains(&format!(
        "{name} #1 0.0000 {} c{}",
        original.pid,
        original.camid + 1
    ));
    harness
        .get_by_label("Back to the dataset's queries")
        .click();
    settle(&mut harness);
    assert!(harness.query_by_label_contains("External query").is_none());
}

#[test]
fn a_bad_dataset_is_an_error_in_the_window() {
    let missing = std::env::temp_dir().join("reidscope-no-such-dataset");
    let spec = spec(missing, Metric::Euclidean);
    let error = reidscope::data::load_dataset(spec.kind, &spec.root)
        .unwrap_err()
        .to_string();
    let mut harness = app(spec);
    // The browser's listing and the run both fail on it; wait until both have reported.
    wait_for(&mut harness, "No run yet");
    wait_for(&mut harness, &error);
    settle(&mut harness);
    assert_eq!(harness.get_all_by_label(&error).count(), 1, "shown once");
    // Still alive: the views keep working.
    harness.get_by_label("Dataset").click();
    settle(&mut harness);
}

#[test]
fn a_running_extraction_can_be_cancelled_from_the_top_bar() {
    // The bundled network on the CPU: minutes in a test build, so the cancel lands mid-run.
    let spec = RunSpec {
        source: FeatureSource::Network(reidscope::run::NetworkSource {
            model: reidscope::demo::DEMO_MODEL.parse().unwrap(),
            weights: bundled(reidscope::demo::DEMO_WEIGHTS),
            last_stride: None,
            precision: reidscope::backend::Precision::F32,
        }),
        ..demo_spec(Metric::Euclidean)
    };
    let mut harness = app(spec);
    wait_for(&mut harness, "extracting features");
    harness.get_by_label("Cancel").click();
    wait_for(&mut harness, "Run cancelled");
    harness.get_by_label("No run yet");
    harness.get_by_label("Run");
}

/// Runs the `reidscope` command line with `args`; it must succeed.
fn run_cli<'a>(args: impl IntoIterator<Item = &'a OsStr>) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_reidscope"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Every file below `root` (relative path, bytes), in path order.
fn files_below(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    let mut folders = vec![root.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                files.push((path.strip_prefix(root).unwrap().to_path_buf(), bytes));
            }
        }
    }
    files.sort();
    files
}

#[test]
fn the_apps_report_export_writes_what_eval_writes() {
    let dir = tempfile::tempdir().unwrap();
    let (from_app, from_cli) = (dir.path().join("app"), dir.path().join("cli"));
    let mut harness = app(demo_spec(Metric::Euclidean));
    wait_for(&mut harness, "Ranked gallery, top 20");
    harness
        .state_mut()
        .request(Action::ExportReport(from_app.clone()));
    wait_for(&mut harness, "Report written to");
    let eval = [
        "eval",
        "--demo",
        "--baseline",
        "--device",
        "cpu",
        "--no-cache",
        "--out",
    ];
    run_cli(eval.iter().map(OsStr::new).chain([from_cli.as_os_str()]));
    let (app_files, cli_files) = (files_below(&from_app), files_below(&from_cli));
    let names = |files: &[(PathBuf, Vec<u8>)]| -> Vec<PathBuf> {
        files.iter().map(|(name, _)| name.clone()).collect()
    };
    assert_eq!(names(&app_files), names(&cli_files));
    assert!(app_files.len() >= 6, "{:?}", names(&app_files));
    for ((name, app_bytes), (_, cli_bytes)) in app_files.iter().zip(&cli_files) {
        assert!(app_bytes == cli_bytes, "{} differs", name.display());
    }
}

/// The app's "Export model…" writes the same file as `reidscope export` for the current run's
/// network, weights and input size; a colour-histogram run has no model to export.
#[test]
fn the_apps_model_export_writes_what_export_writes() {
    let dir = tempfile::tempdir().unwrap();
    let weights = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/osnet_x0_25.pth");
    let mut histogram = app(demo_spec(Metric::Euclidean));
    wait_for(&mut histogram, "Ranked gallery, top 20");
    histogram.state_mut().request(Action::ExportModel {
        path: dir.path().join("none.pth"),
        precision: Precision::F32,
    });
    wait_for(&mut histogram, "it has no model");

    let mut network = demo_spec(Metric::Euclidean);
    network.source = FeatureSource::Network(NetworkSource {
        model: ModelName::OsnetX0_25,
        weights: weights.clone(),
        last_stride: None,
        precision: Precision::F32,
    });
    network.preprocess = Preprocess {
        height: 64,
        width: 32,
    };
    let mut harness = app(network);
    wait_for(&mut harness, "Ranked gallery, top 20");
    let from_app = dir.path().join("app.safetensors");
    harness.state_mut().request(Action::ExportModel {
        path: from_app.clone(),
        precision: Precision::F16,
    });
    wait_for(&mut harness, "Model written to");
    let from_cli = dir.path().join("cli.safetensors");
    let export = ["export", "--model", "osnet_x0_25", "--precision", "f16"];
    let size = ["--height", "64", "--width", "32"];
    let files = [OsStr::new("--weights"), weights.as_os_str()];
    let out = [OsStr::new("--out"), from_cli.as_os_str()];
    let args = export.iter().chain(&size).map(OsStr::new);
    run_cli(args.chain(files).chain(out));
    assert!(std::fs::read(&from_app).unwrap() == std::fs::read(&from_cli).unwrap());
}

/// A Market-1501 folder with the demo's first `identities` identities (their queries and
/// gallery images), so that a network run takes seconds.
fn small_demo(root: &Path, identities: i64) {
    let demo = bundled(DEMO_DATASET);
    for split in ["query", "bounding_box_test"] {
        std::fs::create_dir_all(root.join(split)).unwrap();
        for entry in std::fs::read_dir(demo.join(split)).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            let pid: i64 = name.split('_').next().unwrap().parse().unwrap();
            if (1..=identities).contains(&pid) {
                std::fs::copy(demo.join(split).join(&name), root.join(split).join(&name)).unwrap();
            }
        }
    }
}

/// Steps the app until no node's label contains `text`.
fn wait_for_none(harness: &mut Harness<'static, ReidApp>, text: &str) {
    let start = Instant::now();
    while harness.query_all_by_label_contains(text).next().is_some() {
        assert!(start.elapsed() < Duration::from_secs(60), "`{text}` stayed");
        harness.step();
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_activation_map_toggle_overlays_the_tiles_and_the_detail() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = small_network_spec(tmp.path().join("market"));
    let mut harness = app(spec);
    wait_for(&mut harness, "Ranked gallery, top 20");
    for _ in 0..20 {
        harness.step();
    }
    let overlaid = " · activation map";
    assert_eq!(harness.query_all_by_label_contains(overlaid).count(), 0);

    harness.get_by_label("Activation maps").click();
    wait_for(&mut harness, overlaid);
    // The visible tiles (query, ranked list, true matches) turn into their overlays.
    let start = Instant::now();
    while harness.query_all_by_label_contains(overlaid).count() < 10 {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "{} tiles overlaid",
            harness.query_all_by_label_contains(overlaid).count()
        );
        harness.step();
        std::thread::sleep(Duration::from_millis(20));
    }

    // The dataset browser's detail shows the overlay too.
    harness.state_mut().request(Action::Browse {
        split: reidscope::app::SplitTab::Gallery,
        pid: String::new(),
        selected: Some(0),
    });
    wait_for(
        &mut harness,
        "activation map: where the run's network looks",
    );

    harness
        .state_mut()
        .request(Action::ShowActivationMaps(false));
    wait_for_none(&mut harness, "activation map");
}

/// The demo model on the first six identities of the demo, in f32 on the CPU.
fn small_network_spec(root: PathBuf) -> RunSpec {
    small_demo(&root, 6);
    RunSpec {
        source: FeatureSource::Network(NetworkSource {
            model: ModelName::Mobilenetv2X1_0,
            weights: bundled(DEMO_WEIGHTS),
            last_stride: None,
            precision: Precision::F32,
        }),
        preprocess: DEMO_INPUT,
        ..spec(root, Metric::Euclidean)
    }
}

#[test]
fn the_same_run_in_f16_shows_and_exports_the_feature_drift() {
    if common::wgpu_backend(Precision::F16).is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let spec = small_network_spec(tmp.path().join("market"));
    let mut harness = app(spec.clone());
    wait_for(&mut harness, "Ranked gallery, top 20");
    harness.get_by_label("Compare").click();
    settle(&mut harness);
    harness.get_by_label("Current run in f16").click();
    wait_for(&mut harness, "feature drift A → B");

    // The library's numbers for the same two runs.
    let f16_spec = spec.in_precision(Precision::F16).unwrap();
    let (a, b) = (reference(&spec), reference(&f16_spec));
    let drift = FeatureDrift::new(&a.query_features, &b.query_features, a.feature_dim);
    let lists = |run: &Run| {
        let cancel = AtomicBool::new(false);
        let (q, g) = (&run.query_labels, &run.gallery_labels);
        inspect(&run.distances, q, g, 100, &mut |_, _| {}, &cancel).unwrap()
    };
    let comparison = Comparison::new((&a.evaluation, &lists(&a)), (&b.evaluation, &lists(&b)));
    assert!(drift.max > 0.0, "f16 moves the features");
    harness.get_by_label_contains(&format!(
        "max {:.2e} · mean {:.2e} · top-1 changed for {} queries · mAP {:+.2} points",
        drift.max,
        drift.mean,
        comparison.changed_top1,
        (b.metrics.map - a.metrics.map) * 100.0
    ));

    let path = tmp.path().join("comparison.json");
    harness
        .state_mut()
        .request(Action::ExportComparison(path.clone()));
    wait_for(&mut harness, "Comparison written to");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    // serde_json parses floats to within one unit in the last place.
    let same = |got: &serde_json::Value, want: f64| {
        let got = got.as_f64().expect("a number");
        assert!((got - want).abs() <= 1e-15 * want.abs(), "{got} vs {want}");
    };
    let exported = &json["drift"];
    same(&exported["max"], drift.max);
    same(&exported["mean"], drift.mean);
    let per_query = exported["per_query"].as_array().unwrap();
    assert_eq!(per_query.len(), drift.per_query.len());
    for (got, want) in per_query.iter().zip(&drift.per_query) {
        same(got, *want);
    }
    assert_eq!(
        json["changed_top1"].as_u64(),
        Some(comparison.changed_top1 as u64)
    );
    same(&json["mAP_diff"], b.metrics.map - a.metrics.map);
    same(&json["a"]["mAP"], a.metrics.map);
}

/// What the embedding map says is under `pos`, if a point is there.
fn hovered_point(harness: &mut Harness<'static, ReidApp>, pos: egui::Pos2) -> Option<String> {
    harness.hover_at(pos);
    harness.step();
    let map = harness.get_by_label_contains("embedding map: ");
    let label = map.accesskit_node().label()?;
    Some(label.split_once(" · hovered: ")?.1.to_string())
}

#[test]
fn clicking_a_query_in_the_embedding_map_opens_it() {
    let spec = demo_spec(Metric::Euclidean);
    let run = reference(&spec);
    let mut harness = app(spec);
    wait_for(&mut harness, "Ranked gallery, top 20");
    harness.get_by_label("Embedding").click();
    let points = run.queries.len() + run.gallery.len();
    wait_for(&mut harness, &format!("embedding map: {points} points"));
    let map = harness
        .get_by_label_contains(&format!("embedding map: {points} points"))
        .rect();

    // Hover across the map until the pointer is over a query's point, then click it.
    let mut found = None;
    'search: for row in 1..40 {
        for col in 1..40 {
            let pos =
                map.min + egui::vec2(map.width() * col as f32, map.height() * row as f32) / 40.0;
            if let Some(label) = hovered_point(&mut harness, pos)
                && let Some(rest) = label.strip_prefix("query #")
            {
                let q: usize = rest.split(' ').next().unwrap().parse().unwrap();
                found = Some((pos, q, label));
                break 'search;
            }
        }
    }
    let (pos, q, label) = found.expect("a query point somewhere on the map");
    let query = &run.queries[q];
    assert!(label.contains(&format!("pid {}", query.pid)), "{label}");
    harness.drag_at(pos);
    harness.step();
    harness.drop_at(pos);
    settle(&mut harness);
    harness.get_by_label_contains(&heading(&run, q));
}

#[test]
fn a_training_run_from_the_app_draws_its_curves_and_adds_its_evaluated_epoch_as_a_run() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("market");
    let spec = small_network_spec(root.clone());
    // The demo's first eight train identities (disjoint from its test identities).
    let demo_train = bundled(DEMO_DATASET).join("bounding_box_train");
    std::fs::create_dir_all(root.join("bounding_box_train")).unwrap();
    let mut names: Vec<String> = std::fs::read_dir(&demo_train)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut ids: Vec<&str> = names.iter().map(|n| &n[..4]).collect();
    ids.dedup();
    for name in names.iter().filter(|n| ids[..8].contains(&&n[..4])) {
        std::fs::copy(
            demo_train.join(name),
            root.join("bounding_box_train").join(name),
        )
        .unwrap();
    }

    let mut harness = app(spec.clone());
    wait_for(&mut harness, "Ranked gallery, top 20");
    let out = tmp.path().join("run");
    let mut settings = TrainSettings::recipe(
        (DatasetKind::Market1501, root.clone()),
        ModelName::Mobilenetv2X1_0,
        Some(bundled(DEMO_WEIGHTS)),
        out.clone(),
    );
    settings.size = DEMO_INPUT;
    settings.batch_size = 8;
    settings.instances = 2;
    settings.schedule.epochs = 1;
    settings.eval_every = 1;
    settings.device = DeviceChoice::Cpu;
    harness
        .state_mut()
        .request(Action::StartTraining(Box::new(settings)));
    wait_for(&mut harness, "finished 1 epochs");
    // The curves are drawn, and the evaluated epoch becomes a run of its checkpoint.
    harness.get_by_label_contains("epoch 1: loss ");
    wait_for(&mut harness, "model.pth.tar-1 f32");
    let history = std::fs::read_to_string(out.join("history.csv")).unwrap();
    assert_eq!(history.lines().count(), 2, "{history}");

    // A finished run's folder shows its curves.
    let mut fresh = app(spec);
    wait_for(&mut fresh, "Ranked gallery, top 20");
    fresh
        .state_mut()
        .request(Action::OpenTrainingFolder(out.clone()));
    wait_for(&mut fresh, &format!("{}: 1 epochs", out.display()));
}
