//! burn-nn's affine InstanceNorm, as OSNet-IBN trains it, against PyTorch's `InstanceNorm2d`:
//! output and the gradients of the input, weight and bias, on the CPU backend and the wgpu
//! adapter (fixture from `scripts/make_train_fixtures.py`).

mod common;

use burn::module::Param;
use burn::nn::InstanceNormConfig;
use burn::tensor::{Device, Tensor, TensorData};
use reidscope::backend::Precision;

use common::{assert_close, cpu_backend, fixture_json, json_floats, tensor_values, wgpu_backend};

fn check(device: &Device, name: &str) {
    let all = fixture_json("train/instance_norm.json");
    let case = &all["cases"][0];
    let vector =
        |key: &str| Tensor::<1>::from_data(TensorData::new(json_floats(&case[key]), [3]), device);
    let mut norm = InstanceNormConfig::new(3).with_affine(true).init(device);
    norm.gamma = Some(Param::from_tensor(vector("weight")));
    norm.beta = Some(Param::from_tensor(vector("bias")));
    let tensor = |key: &str| {
        Tensor::<4>::from_data(
            TensorData::new(json_floats(&case[key]), [4, 3, 5, 5]),
            device,
        )
    };
    let input = tensor("input").require_grad();
    let output = norm.forward(input.clone());
    let gradients = (output.clone() * tensor("weights")).sum().backward();
    let close = |got: Vec<f32>, key: &str, tolerance: f32| {
        assert_close(
            &got,
            &json_floats(&case[key]),
            tolerance,
            &format!("{name}: {key}"),
        );
    };
    close(tensor_values(output), "output", 1e-5);
    close(
        tensor_values(input.grad(&gradients).unwrap()),
        "grad_input",
        1e-4,
    );
    for (param, key) in [(&norm.gamma, "grad_weight"), (&norm.beta, "grad_bias")] {
        let grad = param.as_ref().unwrap().grad(&gradients).unwrap();
        close(tensor_values(grad), key, 1e-4);
    }
}

#[test]
fn instance_norm_equals_pytorch_on_the_cpu() {
    check(&cpu_backend().device.autodiff(), "cpu");
}

#[test]
fn instance_norm_equals_pytorch_on_wgpu() {
    if let Some(backend) = wgpu_backend(Precision::F32) {
        check(&backend.device.autodiff(), "wgpu");
    }
}
