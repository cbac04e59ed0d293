//! The `train` command end to end on the small `folder` dataset of `tests/fixtures/train/step`:
//! a resumed run equals an uninterrupted one, and bad input is a one-line error.

mod common;

use std::path::Path;

use reidscope::models::checkpoint::Checkpoint;

use common::{fixture, reidscope, train_on_folder, train_on_folder_args};

/// `reidscope train` of MobileNetV2 at 64×32 on the step fixture with `extra` arguments
/// (batches of 4 identities × 2 unless they say otherwise).
fn train(out: &Path, extra: &[&str]) -> std::process::Output {
    let root = fixture("train/step");
    reidscope(&train_args(&root, out, extra))
}

/// The arguments of [`train`] (`root` is the step fixture).
fn train_args(root: &Path, out: &Path, extra: &[&str]) -> Vec<String> {
    let init = root.join("mobilenetv2_x1_0_init.pth");
    let mut args = vec![
        "--height",
        "64",
        "--width",
        "32",
        "--augment",
        "flip,crop,erase,color",
        "--device",
        "cpu",
        "--eval-every",
        "0",
    ];
    if !extra.contains(&"--resume") {
        args.extend(["--weights", init.to_str().unwrap()]);
    }
    if !extra.contains(&"--batch-size") {
        args.extend(["--batch-size", "8", "--instances", "2"]);
    }
    args.extend(extra);
    train_on_folder_args("mobilenetv2_x1_0", root, out, &args)
        .into_iter()
        .map(String::from)
        .collect()
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_resumed_run_continues_exactly_where_it_stopped() {
    let straight = tempfile::tempdir().unwrap();
    let output = train(straight.path(), &["--epochs", "2"]);
    assert!(output.status.success(), "{}", stderr(&output));

    let resumed = tempfile::tempdir().unwrap();
    let output = train(resumed.path(), &["--epochs", "1"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let first = resumed.path().join("model.pth.tar-1");
    let output = train(
        resumed.path(),
        &["--epochs", "2", "--resume", first.to_str().unwrap()],
    );
    assert!(output.status.success(), "{}", stderr(&output));

    let history = |dir: &Path| std::fs::read_to_string(dir.join("history.csv")).unwrap();
    let losses = |text: String| -> Vec<String> {
        text.lines()
            .skip(1)
            .map(|l| l.split(',').take(5).collect::<Vec<_>>().join(","))
            .collect()
    };
    assert_eq!(
        losses(history(resumed.path())),
        losses(history(straight.path())),
        "epoch, losses and accuracy of both epochs"
    );
    let mut a = Checkpoint::open(&straight.path().join("model.pth.tar-2")).unwrap();
    let mut b = Checkpoint::open(&resumed.path().join("model.pth.tar-2")).unwrap();
    for (key, shape) in [
        ("classifier.weight", vec![4, 1280]),
        ("features.0.0.weight", vec![32, 3, 3, 3]),
        ("features.18.1.running_var", vec![1280]),
    ] {
        assert_eq!(
            a.read_f32(key, &shape).unwrap(),
            b.read_f32(key, &shape).unwrap(),
            "{key}"
        );
    }
    assert_eq!(
        a.read_count("features.18.1.num_batches_tracked").unwrap(),
        Some(2)
    );
}

#[test]
fn bad_training_input_is_a_one_line_error() {
    let out = tempfile::tempdir().unwrap();
    let no_train = tempfile::tempdir().unwrap();
    for split in ["query", "gallery"] {
        let dir = no_train.path().join(split);
        std::fs::create_dir(&dir).unwrap();
        let image = fixture("train/step/query/0001_c1s1_000100_00.png");
        std::fs::copy(&image, dir.join("0001_c1s1_000100_00.png")).unwrap();
    }
    let output = train_on_folder("mobilenetv2_x1_0", no_train.path(), out.path(), &[]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("no train split"),
        "{}",
        stderr(&output)
    );

    let output = train(out.path(), &["--batch-size", "16", "--instances", "2"]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains(
            "the train split has 4 identities, but a batch of 16 with 2 images each needs 8"
        ),
        "{}",
        stderr(&output)
    );

    let output = train(out.path(), &["--precision", "mixed"]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("--precision mixed needs f16 compute, which flex (CPU) lacks"),
        "{}",
        stderr(&output)
    );

    let output = reidscope(&["train", "--model", "osnet_x9", "--demo", "--out", "x"]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("unknown model 'osnet_x9'"),
        "{}",
        stderr(&output)
    );

    let output = train(out.path(), &["--epochs", "1"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let checkpoint = out.path().join("model.pth.tar-1");
    let resume = ["--resume", checkpoint.to_str().unwrap()];
    let batch = ["--batch-size", "8", "--instances", "2"];
    let output = train_on_folder(
        "osnet_ibn_x1_0",
        &fixture("train/step"),
        out.path(),
        &[&resume[..], &batch[..]].concat(),
    );
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(
        message.contains("model.pth.tar-1") && message.contains("conv1.conv.weight"),
        "{message}"
    );
    // (The Vulkan loader's "XDG_RUNTIME_DIR is invalid" lines of a headless machine aside.)
    let lines = message.lines().filter(|l| !l.contains("XDG_RUNTIME_DIR"));
    assert_eq!(lines.count(), 1, "{message}");
}

/// Ctrl-C (SIGINT) finishes the current step and stops; the newest checkpoint is complete and
/// the message says how to resume.
#[cfg(unix)]
#[test]
fn ctrl_c_stops_training_and_keeps_the_last_checkpoint() {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    let out = tempfile::tempdir().unwrap();
    let root = fixture("train/step");
    let child = Command::new(env!("CARGO_BIN_EXE_reidscope"))
        .args(train_args(&root, out.path(), &["--epochs", "100000"]))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start reidscope train");
    let first = out.path().join("model.pth.tar-1");
    let started = Instant::now();
    while !first.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "no checkpoint after 10 minutes"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(sent.success());
    let output = child.wait_with_output().unwrap();
    assert!(!output.status.success());
    let message = stderr(&output);
    let last_line = message.lines().last().unwrap_or_default();
    assert!(
        last_line.starts_with("error: interrupted after"),
        "{message}"
    );
    // The checkpoint it names is the newest, complete and loadable, and history.csv ends there.
    let (_, named) = last_line
        .split_once("continue with --resume ")
        .unwrap_or_else(|| panic!("{message}"));
    let epochs = std::fs::read_to_string(out.path().join("history.csv"))
        .unwrap()
        .lines()
        .count()
        - 1;
    assert_eq!(
        Path::new(named),
        out.path().join(format!("model.pth.tar-{epochs}"))
    );
    Checkpoint::open(Path::new(named)).expect("the last checkpoint is complete");
    let mut files: Vec<String> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| !name.starts_with("model.pth.tar-"))
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            ".reidscope-files",
            "curves.png",
            "curves.svg",
            "history.csv"
        ],
        "no temporary files"
    );
}

/// `train --out` never overwrites a file it did not write: a run into a folder holding a
/// stranger's `history.csv` or `model.pth.tar-1` stops before training and leaves it alone.
#[test]
fn training_leaves_files_it_did_not_write_alone() {
    for name in ["history.csv", "model.pth.tar-1"] {
        let out = tempfile::tempdir().unwrap();
        std::fs::write(out.path().join(name), b"mine").unwrap();
        let output = train(out.path(), &["--epochs", "1"]);
        assert!(!output.status.success());
        assert!(
            stderr(&output).contains(&format!("{name}: exists and was not written by reidscope")),
            "{}",
            stderr(&output)
        );
        assert_eq!(std::fs::read(out.path().join(name)).unwrap(), b"mine");
        assert!(
            !out.path().join("curves.png").exists(),
            "stopped before training"
        );
    }
}
