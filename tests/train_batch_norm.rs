//! The training BatchNorm against PyTorch's `BatchNorm2d` in train mode: outputs, gradients of
//! the input, weight and bias, and the running statistics (unbiased variance, batch count) over
//! two steps, on the CPU backend and the wgpu adapter (fixture from
//! `scripts/make_train_fixtures.py`).

mod common;

use burn::tensor::{Device, Tensor, TensorData};
use reidscope::backend::Precision;
use reidscope::models::batch_norm::{BatchNorm, BatchNormValues};

use common::{assert_close, cpu_backend, fixture_json, json_floats, tensor_values, wgpu_backend};

fn check(device: &Device, name: &str) {
    let all = fixture_json("train/batch_norm.json");
    let case = &all["cases"][0];
    let layer = BatchNorm::new(
        &BatchNormValues {
            gamma: json_floats(&case["weight"]),
            beta: json_floats(&case["bias"]),
            running_mean: json_floats(&case["running_mean"]),
            running_var: json_floats(&case["running_var"]),
            batches_tracked: 0,
        },
        device,
    );
    for (i, step) in case["steps"].as_array().unwrap().iter().enumerate() {
        let tensor = |key: &str| {
            Tensor::<4>::from_data(
                TensorData::new(json_floats(&step[key]), [4, 3, 5, 5]),
                device,
            )
        };
        let input = tensor("input").require_grad();
        let output = layer.forward_train(input.clone());
        let loss = (output.clone() * tensor("weights")).sum();
        let gradients = loss.backward();
        let what = |w: &str| format!("{name} step {}: {w}", i + 1);
        assert_close(
            &tensor_values(output),
            &json_floats(&step["output"]),
            1e-5,
            &what("output"),
        );
        let grad_input = input.grad(&gradients).expect("input gradient");
        assert_close(
            &tensor_values(grad_input),
            &json_floats(&step["grad_input"]),
            1e-4,
            &what("input gradient"),
        );
        for (param, key) in [(&layer.gamma, "grad_weight"), (&layer.beta, "grad_bias")] {
            let grad = param.grad(&gradients).expect("parameter gradient");
            let grad = tensor_values(grad);
            assert_close(&grad, &json_floats(&step[key]), 1e-4, &what(key));
        }
        let state = layer.values();
        assert_close(
            &state.running_mean,
            &json_floats(&step["running_mean"]),
            1e-6,
            &what("running mean"),
        );
        assert_close(
            &state.running_var,
            &json_floats(&step["running_var"]),
            1e-6,
            &what("running var"),
        );
        assert_eq!(
            state.batches_tracked,
            step["num_batches_tracked"].as_u64().unwrap(),
            "{}",
            what("batches")
        );
    }
}

#[test]
fn train_mode_batch_norm_equals_pytorch_on_the_cpu() {
    check(&cpu_backend().device.autodiff(), "cpu");
}

#[test]
fn train_mode_batch_norm_equals_pytorch_on_wgpu() {
    if let Some(backend) = wgpu_backend(Precision::F32) {
        check(&backend.device.autodiff(), "wgpu");
    }
}
