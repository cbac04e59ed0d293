//! `reidscope export` to a Torchreid `.pth` (f32 and f16): the file reloads to the same
//! features; an unknown format is an error that writes nothing.

mod common;

use reidscope::backend::Precision;
use reidscope::models::{BuildOptions, Model, ModelName};

use common::{cpu_backend, fixture, max_abs_diff, read_npy, reidscope};

fn features(name: ModelName, weights: &std::path::Path) -> Vec<f32> {
    let model =
        Model::from_checkpoint(name, weights, BuildOptions::default(), &cpu_backend()).unwrap();
    let (input, shape) = read_npy::<f32>(&fixture("input.npy"));
    model
        .features(input, [shape[0], shape[1], shape[2], shape[3]])
        .unwrap()
}

#[test]
fn an_exported_pth_reloads_to_the_same_network() {
    let tmp = tempfile::tempdir().unwrap();
    let source = fixture("osnet_ibn_x1_0.pth.tar");
    let name = ModelName::OsnetIbnX1_0;
    let reference = features(name, &source);
    for precision in [Precision::F32, Precision::F16] {
        let out = tmp.path().join(format!("exported_{precision}.pth"));
        let output = reidscope(&[
            "export",
            "--model",
            "osnet_ibn_x1_0",
            "--weights",
            source.to_str().unwrap(),
            "--precision",
            &precision.to_string(),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        // The fixture's values are exact in fp16, so the f16 file holds the same numbers too.
        let reloaded = features(name, &out);
        assert_eq!(max_abs_diff(&reloaded, &reference), 0.0, "{precision}");
    }
}

#[test]
fn an_unknown_export_format_is_an_error_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("model.bin");
    let output = reidscope(&[
        "export",
        "--model",
        "osnet_ibn_x1_0",
        "--weights",
        fixture("osnet_ibn_x1_0.pth.tar").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!output.status.success());
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(
        message.contains("model.bin") && message.contains(".pth"),
        "{message}"
    );
    assert!(!out.exists());
}
