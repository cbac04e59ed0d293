//! The `reidscope` binary: extract, bench and devices, including bad input.

mod common;

use std::path::Path;
use std::process::Output;

use common::*;

/// Runs reidscope with the whitespace-separated arguments of `line`.
fn reidscope_line(line: &str) -> Output {
    reidscope(&line.split_whitespace().collect::<Vec<_>>())
}

/// `reidscope extract` on the CPU backend.
fn extract_on_cpu(
    model: &str,
    weights: &Path,
    images: &Path,
    out: &Path,
    extra: &[&str],
) -> Output {
    run_on_folder("extract", (model, weights), images, out, extra)
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A folder with the fixture images plus an empty, a truncated and a non-image file.
fn image_folder_with_broken_files(dir: &Path) {
    for path in reidscope::data::list_images(&fixture("images")).unwrap() {
        std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
    }
    std::fs::write(dir.join("0000_empty.jpg"), b"").unwrap();
    let jpeg = std::fs::read(fixture("images/0003_c1s1_000003_00.jpg")).unwrap();
    std::fs::write(dir.join("0001_truncated.jpg"), &jpeg[..jpeg.len() / 3]).unwrap();
    std::fs::write(dir.join("0002_text.png"), b"hello, not a png").unwrap();
    std::fs::write(dir.join("readme.txt"), b"ignored").unwrap();
}

#[test]
fn extract_skips_unreadable_images_and_matches_torchreid() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    std::fs::create_dir(&images).unwrap();
    image_folder_with_broken_files(&images);
    let out = dir.path().join("feats.npy");
    let output = extract_on_cpu(
        "osnet_x0_25",
        &fixture("osnet_x0_25.pth"),
        &images,
        &out,
        &["--batch", "3"],
    );
    let err = stderr(&output);
    assert!(output.status.success(), "{err}");
    for broken in ["0000_empty.jpg", "0001_truncated.jpg", "0002_text.png"] {
        assert!(err.contains(broken), "stderr does not name {broken}: {err}");
    }

    let names = std::fs::read_to_string(dir.path().join("feats.npy.files.txt")).unwrap();
    let expected_names: Vec<String> = reidscope::data::list_images(&fixture("images"))
        .unwrap()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.lines().collect::<Vec<_>>(), expected_names);

    let (got, shape) = read_npy::<f32>(&out);
    assert_eq!(shape, [expected_names.len(), 512]);
    let (expected, _) = read_npy::<f32>(&fixture("images_osnet_x0_25.npy"));
    for ((g, e), name) in got
        .chunks(512)
        .zip(expected.chunks(512))
        .zip(&expected_names)
    {
        // Decoding and resizing are bit-exact with Pillow: fp32 tolerance end to end.
        let diff = max_abs_diff(g, e);
        assert!(
            diff <= 1e-4 * max_abs(e),
            "{name}: max-abs difference {diff}"
        );
    }
}

#[test]
fn extract_with_a_bad_checkpoint_fails_with_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("feats.npy");
    let output = extract_on_cpu(
        "osnet_x1_0",
        &fixture("osnet_x0_25.pth"),
        &fixture("images"),
        &out,
        &[],
    );
    let err = stderr(&output);
    assert!(!output.status.success());
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("osnet_x0_25.pth") && err.contains("conv1.conv.weight"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert!(!out.exists(), "no output on failure");
}

#[test]
fn an_input_smaller_than_the_network_stride_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("feats.npy");
    // OSNet shrinks its input 16-fold: 16x16 runs, 8x8 (and 15 pixels wide) is refused.
    for (height, width, runs) in [("16", "16", true), ("8", "8", false), ("32", "15", false)] {
        let size = ["--height", height, "--width", width];
        let output = extract_on_cpu(
            "osnet_x0_25",
            &fixture("osnet_x0_25.pth"),
            &fixture("images"),
            &out,
            &size,
        );
        let err = stderr(&output);
        assert_eq!(output.status.success(), runs, "{height}x{width}: {err}");
        if !runs {
            assert_eq!(err.trim().lines().count(), 1, "{err}");
            assert!(
                err.contains(&format!(
                    "an input of {height}x{width} is too small for osnet_x0_25"
                )) && err.contains("at least 16"),
                "{err}"
            );
        }
    }
    // Training checks before its first step.
    let root = fixture("train/step");
    let train_out = dir.path().join("run");
    let output = train_on_folder(
        "mobilenetv2_x1_0",
        &root,
        &train_out,
        &[
            "--height",
            "16",
            "--width",
            "16",
            "--device",
            "cpu",
            "--batch-size",
            "8",
        ],
    );
    let err = stderr(&output);
    assert!(!output.status.success());
    assert!(
        err.contains("at least 32") && !err.contains("panicked"),
        "{err}"
    );
    assert!(!train_out.exists(), "nothing written");
}

#[test]
fn extract_with_an_unknown_model_lists_the_known_ones() {
    let output = extract_on_cpu(
        "osnet_x9",
        Path::new("w.pth"),
        Path::new("."),
        Path::new("f.npy"),
        &[],
    );
    let err = stderr(&output);
    assert!(!output.status.success());
    assert!(
        err.contains("osnet_x9") && err.contains("osnet_ibn_x1_0"),
        "{err}"
    );
}

#[test]
fn f16_on_the_cpu_backend_is_a_clear_error() {
    let output =
        reidscope_line("bench --model osnet_x0_25 --device cpu --precision f16 --seconds 0");
    let err = stderr(&output);
    assert!(!output.status.success());
    assert!(err.contains("f16") && !err.contains("panicked"), "{err}");
}

#[test]
fn bench_prints_one_parseable_line_per_configuration_and_thread_count() {
    let output = reidscope_line(
        "bench --model osnet_x0_25 --device cpu --precision f32 --batch 1,2 --threads 1,2 --seconds 0.2 --height 64 --width 32",
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{stdout}");
    for (line, (threads, batch)) in lines.iter().zip([(1, 1), (1, 2), (2, 1), (2, 2)]) {
        let fields: Vec<(&str, &str)> = line
            .split_whitespace()
            .map(|kv| kv.split_once('=').expect("key=value"))
            .collect();
        let keys: Vec<&str> = fields.iter().map(|(k, _)| *k).collect();
        assert_eq!(
            keys,
            [
                "model",
                "device",
                "precision",
                "batch",
                "threads",
                "images_per_s"
            ]
        );
        assert_eq!(fields[0].1, "osnet_x0_25");
        assert_eq!(fields[1].1, "cpu");
        assert_eq!(fields[3].1, batch.to_string());
        assert_eq!(fields[4].1, threads.to_string(), "the pool measured in");
        let rate: f64 = fields[5].1.parse().unwrap();
        assert!(rate > 0.0, "{line}");
    }
}

#[test]
fn threads_is_one_positive_number_outside_bench() {
    for (threads, expected) in [("0", "at least 1"), ("1,2", "only bench takes a list")] {
        let output = reidscope_line(&format!("--threads {threads} devices"));
        assert!(!output.status.success());
        let err = stderr(&output);
        assert!(err.contains(expected), "{err}");
    }
    let output = reidscope_line("--threads 1 devices");
    assert!(output.status.success(), "{}", stderr(&output));
}

#[test]
fn devices_lists_the_cpu_backend_and_any_adapter() {
    let output = reidscope(&["devices"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.contains("cpu: flex"), "{stdout}");
    if wgpu_required() {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with("gpu: ") && l.contains("f16=")),
            "{stdout}"
        );
    }
}

#[cfg(unix)]
#[test]
fn written_files_are_readable_by_others() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("feats.npy");
    let output = extract_on_cpu(
        "osnet_x0_25",
        &fixture("osnet_x0_25.pth"),
        &fixture("images"),
        &out,
        &[],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    for path in [out.clone(), dir.path().join("feats.npy.files.txt")] {
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & 0o044, 0o044, "{}: mode {mode:o}", path.display());
    }
}

#[test]
fn help_names_the_app_and_its_scripted_tours() {
    let output = reidscope_line("--help");
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(help.contains("gui"), "{help}");
    assert!(help.contains("Without a command, the app opens"), "{help}");
    let output = reidscope_line("gui --help");
    let help = String::from_utf8_lossy(&output.stdout);
    for option in [
        "--screenshots",
        "--measure-frames",
        "--root",
        "--baseline",
        "--weights",
    ] {
        assert!(help.contains(option), "{option} missing from\n{help}");
    }
}

#[test]
fn gui_options_are_checked_before_a_window_opens() {
    let output = reidscope_line("gui --model osnet_x1_0");
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("give --model and --weights together"),
        "{}",
        stderr(&output)
    );
}

/// The 172-byte `.npy` file the fuzzer found (nested braces in its header, kept in
/// `tests/fixtures/fuzz/regressions/`): the header parser backtracked on it for minutes;
/// `metrics` now refuses it at once, naming the file.
#[test]
fn metrics_refuses_the_npy_header_that_hung_the_parser() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("qf.npy");
    std::fs::copy(fixture("fuzz/regressions/npy_nested_braces.npy"), &path).unwrap();
    let file = path.to_str().unwrap();
    let output = reidscope(
        &[
            "metrics",
            "--qf",
            file,
            "--gf",
            file,
            "--q-pids",
            file,
            "--g-pids",
            file,
            "--q-camids",
            file,
            "--g-camids",
            file,
            "--out",
        ]
        .into_iter()
        .chain([dir.path().join("m.json").to_str().unwrap()])
        .collect::<Vec<_>>(),
    );
    let err = stderr(&output);
    assert!(!output.status.success());
    assert!(
        err.contains("qf.npy: the header is not a plain array's (nested brackets)"),
        "{err}"
    );
}

/// The `.npy` file the fuzzer found whose shape's product overflows (the reader multiplied
/// it unchecked and panicked): refused with a reason.
#[test]
fn metrics_refuses_an_npy_shape_whose_size_overflows() {
    let path = fixture("fuzz/regressions/npy_shape_overflow.npy");
    let file = path.to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.json");
    let flags = [
        "--qf",
        "--gf",
        "--q-pids",
        "--g-pids",
        "--q-camids",
        "--g-camids",
    ];
    let mut args = vec!["metrics"];
    for flag in flags {
        args.extend([flag, file]);
    }
    args.extend(["--out", out.to_str().unwrap()]);
    let output = reidscope(&args);
    let err = stderr(&output);
    assert!(!output.status.success());
    assert!(err.contains("holds more values than any file can"), "{err}");
}
