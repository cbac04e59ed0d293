//! The training losses against Torchreid's own `CrossEntropyLoss` and `TripletLoss`: values and
//! gradients on the fixtures of `scripts/make_train_fixtures.py`, under autodiff on the CPU
//! backend and on the wgpu adapter.

mod common;

use burn::tensor::{Device, Tensor, TensorData};
use reidscope::backend::Precision;
use reidscope::train::loss::{batch_hard_triplet, cross_entropy};
use serde_json::Value;

use common::{
    cpu_backend, fixture_json, json_floats, max_abs, max_abs_diff, tensor_values, wgpu_backend,
};

/// Row-major values and `[rows, cols]` of a JSON matrix.
fn matrix(value: &Value) -> (Vec<f32>, [usize; 2]) {
    let rows = value.as_array().unwrap();
    let cols = rows[0].as_array().unwrap().len();
    (json_floats(value), [rows.len(), cols])
}

/// Checks every fixture case on `device`: the loss within 1e-5 relative and the gradient
/// within 1e-5 of its largest value.
fn check_cases(device: &Device, name: &str) {
    let cases = fixture_json("train/losses.json");
    for (i, case) in cases["cases"].as_array().unwrap().iter().enumerate() {
        let (inputs, shape) = matrix(&case["inputs"]);
        let labels: Vec<usize> = case["labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        let input = Tensor::<2>::from_data(TensorData::new(inputs, shape), device).require_grad();
        let loss = match case["kind"].as_str().unwrap() {
            "softmax" => cross_entropy(
                input.clone(),
                &labels,
                case["epsilon"].as_f64().unwrap() as f32,
            ),
            _ => batch_hard_triplet(
                input.clone(),
                &labels,
                case["margin"].as_f64().unwrap() as f32,
            ),
        };
        let gradients = loss.backward();
        let value = loss.into_scalar::<f32>();
        let expected = case["loss"].as_f64().unwrap() as f32;
        assert!(
            (value - expected).abs() <= 1e-5 * expected.abs().max(1.0),
            "{name} case {i}: loss {value} vs Torchreid {expected}"
        );
        let grad = tensor_values(
            input
                .grad(&gradients)
                .expect("the input takes part in the loss"),
        );
        let (expected_grad, _) = matrix(&case["grad"]);
        let error = max_abs_diff(&grad, &expected_grad);
        assert!(
            error <= 1e-5 * max_abs(&expected_grad).max(1e-3),
            "{name} case {i}: gradient off by {error}"
        );
    }
}

#[test]
fn losses_and_gradients_equal_torchreid_on_the_cpu() {
    check_cases(&cpu_backend().device.autodiff(), "cpu");
}

#[test]
fn losses_and_gradients_equal_torchreid_on_wgpu() {
    if let Some(backend) = wgpu_backend(Precision::F32) {
        check_cases(&backend.device.autodiff(), "wgpu");
    }
}
