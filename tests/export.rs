//! `reidscope export` to a Torchreid `.pth` and to `.safetensors` (f32 and f16): the file
//! reloads to the same features; an unknown format is an error that writes nothing.

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
fn an_exported_pth_or_safetensors_reloads_to_the_same_network() {
    let tmp = tempfile::tempdir().unwrap();
    let source = fixture("osnet_ibn_x1_0.pth.tar");
    let name = ModelName::OsnetIbnX1_0;
    let reference = features(name, &source);
    let formats = [Precision::F32, Precision::F16]
        .into_iter()
        .flat_map(|precision| ["pth", "safetensors"].map(|format| (precision, format)));
    for (precision, format) in formats {
        let out = tmp.path().join(format!("exported_{precision}.{format}"));
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
        assert_eq!(
            max_abs_diff(&reloaded, &reference),
            0.0,
            "{precision} {format}"
        );
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

/// An export replaces an earlier export of the same name, but never a file reidscope did not
/// write, and never writes through a symlinked folder.
#[cfg(unix)]
#[test]
fn export_replaces_only_its_own_files() {
    let tmp = tempfile::tempdir().unwrap();
    let export_to = |out: &std::path::Path| {
        reidscope(&[
            "export",
            "--model",
            "osnet_x0_25",
            "--weights",
            fixture("osnet_x0_25.pth").to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
    };
    let own = tmp.path().join("models/exported.pth");
    for _ in 0..2 {
        let output = export_to(&own);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let foreign = tmp.path().join("models/theirs.pth");
    std::fs::write(&foreign, b"somebody's file").unwrap();
    let output = export_to(&foreign);
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        message.contains("theirs.pth: exists and was not written by reidscope"),
        "{message}"
    );
    assert_eq!(std::fs::read(&foreign).unwrap(), b"somebody's file");

    let real = tmp.path().join("real");
    std::fs::create_dir(&real).unwrap();
    std::os::unix::fs::symlink(&real, tmp.path().join("link")).unwrap();
    let output = export_to(&tmp.path().join("link/m.pth"));
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(message.contains("is a symbolic link"), "{message}");
    assert_eq!(std::fs::read_dir(&real).unwrap().count(), 0);
}

/// A `.safetensors` export records the model and its input size, and its tensors carry
/// Torchreid's key names; a damaged one is a clear error naming the file.
#[test]
fn a_safetensors_export_names_the_model_and_input_size() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("osnet.safetensors");
    let output = reidscope(&[
        "export",
        "--model",
        "osnet_x0_25",
        "--weights",
        fixture("osnet_x0_25.pth").to_str().unwrap(),
        "--height",
        "128",
        "--width",
        "64",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let bytes = std::fs::read(&out).unwrap();
    let (_, metadata) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let info = metadata.metadata().clone().unwrap();
    assert_eq!(info["model"], "osnet_x0_25");
    assert_eq!(
        (info["height"].as_str(), info["width"].as_str()),
        ("128", "64")
    );
    assert!(metadata.tensors().contains_key("conv1.conv.weight"));

    let damaged = tmp.path().join("damaged.safetensors");
    std::fs::write(&damaged, &bytes[..bytes.len() / 2]).unwrap();
    let error = Model::from_checkpoint(
        ModelName::OsnetX0_25,
        &damaged,
        BuildOptions::default(),
        &cpu_backend(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("damaged.safetensors") && error.contains("safetensors:"),
        "{error}"
    );
}
