//! Helpers shared by the integration tests: fixtures, `.npy` reading, backends under test.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use reidscope::backend::{Backend, DeviceChoice, Precision, wgpu_adapters};

/// Path of a committed fixture.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Runs the `reidscope` binary with `args`.
pub fn reidscope<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_reidscope"))
        .args(args)
        .output()
        .expect("run reidscope")
}

/// Runs `reidscope COMMAND --model MODEL --weights WEIGHTS --images IMAGES --out OUT --device
/// cpu` with `extra` (`extract`, `actmap`).
pub fn run_on_folder(
    command: &str,
    (model, weights): (&str, &Path),
    images: &Path,
    out: &Path,
    extra: &[&str],
) -> Output {
    let mut args = vec![
        command,
        "--model",
        model,
        "--weights",
        weights.to_str().expect("UTF-8 path"),
        "--images",
        images.to_str().expect("UTF-8 path"),
        "--out",
        out.to_str().expect("UTF-8 path"),
        "--device",
        "cpu",
    ];
    args.extend_from_slice(extra);
    reidscope(&args)
}

/// Runs `reidscope train --model MODEL --dataset folder --root ROOT --out OUT` with `extra`.
pub fn train_on_folder(model: &str, root: &Path, out: &Path, extra: &[&str]) -> Output {
    reidscope(&train_on_folder_args(model, root, out, extra))
}

/// The arguments of [`train_on_folder`].
pub fn train_on_folder_args<'a>(
    model: &'a str,
    root: &'a Path,
    out: &'a Path,
    extra: &[&'a str],
) -> Vec<&'a str> {
    let mut args = vec![
        "train",
        "--model",
        model,
        "--dataset",
        "folder",
        "--root",
        root.to_str().expect("UTF-8 path"),
        "--out",
        out.to_str().expect("UTF-8 path"),
    ];
    args.extend(extra);
    args
}

/// Path of a file under the repository root.
pub fn repo_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(name)
}

/// Reads an `.npy` file: (values, shape).
pub fn read_npy<T: npyz::Deserialize>(path: &Path) -> (Vec<T>, Vec<usize>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let npy = npyz::NpyFile::new(&bytes[..]).expect("valid npy");
    let shape = npy.shape().iter().map(|&d| d as usize).collect();
    let values = npy
        .into_vec::<T>()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (values, shape)
}

/// True when the environment demands the wgpu code paths (CI sets `REIDSCOPE_REQUIRE_WGPU=1`).
pub fn wgpu_required() -> bool {
    std::env::var("REIDSCOPE_REQUIRE_WGPU").is_ok_and(|v| v == "1")
}

/// The wgpu backend in `precision`, if this machine has an adapter. With
/// `REIDSCOPE_REQUIRE_WGPU=1` a missing adapter (or missing f16 support) fails the test
/// instead of skipping it.
pub fn wgpu_backend(precision: Precision) -> Option<Backend> {
    if wgpu_adapters().is_empty() {
        assert!(
            !wgpu_required(),
            "REIDSCOPE_REQUIRE_WGPU=1 but wgpu found no adapter"
        );
        eprintln!("note: no wgpu adapter, wgpu part of this test not run");
        return None;
    }
    match Backend::select(DeviceChoice::Gpu, precision) {
        Ok(backend) => Some(backend),
        Err(e) => {
            assert!(!wgpu_required(), "REIDSCOPE_REQUIRE_WGPU=1 but {e}");
            eprintln!("note: {e}; wgpu {precision} part of this test not run");
            None
        }
    }
}

/// The native CPU backend.
pub fn cpu_backend() -> Backend {
    Backend::select(DeviceChoice::Cpu, Precision::F32).expect("flex backend")
}

/// Largest absolute difference between two equally long slices.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Largest absolute value.
pub fn max_abs(a: &[f32]) -> f32 {
    a.iter().fold(0.0, |m, x| m.max(x.abs()))
}

/// Cosine similarity of two vectors.
pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

/// A committed JSON fixture.
pub fn fixture_json(name: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(fixture(name)).expect("fixture exists");
    serde_json::from_str(&text).expect("fixture is JSON")
}

/// Every number of a (nested) JSON array, flattened in order, as f32.
pub fn json_floats(value: &serde_json::Value) -> Vec<f32> {
    match value {
        serde_json::Value::Array(items) => items.iter().flat_map(json_floats).collect(),
        v => vec![v.as_f64().expect("a number") as f32],
    }
}

/// A tensor's values, row-major, as f32.
pub fn tensor_values<const D: usize>(tensor: burn::tensor::Tensor<D>) -> Vec<f32> {
    tensor.to_data().try_to_vec::<f32>().expect("float values")
}

/// Asserts that `got` is within `tolerance` × the largest of `expected` (at least 1) of it.
pub fn assert_close(got: &[f32], expected: &[f32], tolerance: f32, what: &str) {
    let error = max_abs_diff(got, expected);
    assert!(
        error <= tolerance * max_abs(expected).max(1.0),
        "{what}: off by {error}"
    );
}

/// Writes `source` (a `model` checkpoint) to `out` with `value` at index 0 of tensor `key`.
pub fn checkpoint_with_value(
    model: reidscope::models::ModelName,
    source: &Path,
    key: &str,
    value: f32,
    out: &Path,
) {
    use reidscope::models::checkpoint_writer::{TensorValues, Value, write_checkpoint};
    use reidscope::models::{BuildOptions, Model};
    let model = Model::from_checkpoint(model, source, BuildOptions::default(), &cpu_backend())
        .expect("the source checkpoint loads");
    let Value::OrderedDict(mut entries) = model.state().unwrap().to_value(Precision::F32) else {
        panic!("a state dict is an OrderedDict");
    };
    let (_, tensor) = entries
        .iter_mut()
        .find(|(k, _)| k == key)
        .unwrap_or_else(|| panic!("no tensor {key}"));
    let Value::Tensor(record) = tensor else {
        panic!("{key} is a tensor");
    };
    let TensorValues::F32(values) = &mut record.values else {
        panic!("{key} is float32");
    };
    values[0] = value;
    write_checkpoint(out, &Value::OrderedDict(entries)).unwrap();
}
