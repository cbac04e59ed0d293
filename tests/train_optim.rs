//! Optimisers and learning-rate schedules against PyTorch's, as Torchreid builds them, on the
//! fixtures of `scripts/make_train_fixtures.py`.

mod common;

use burn::optim::Optimizer;
use burn::tensor::{Tensor, TensorData};
use reidscope::train::optimizer::{OptimizerKind, OptimizerSettings};
use reidscope::train::schedule::{Schedule, Scheduler};
use serde_json::Value;

use common::{cpu_backend, fixture_json, json_floats, max_abs, max_abs_diff, tensor_values};

fn cases(name: &str) -> Vec<Value> {
    let all = fixture_json(&format!("train/{name}"));
    all["cases"].as_array().unwrap().clone()
}

fn tensor(values: Vec<f32>) -> Tensor<2> {
    let cols = 4;
    let rows = values.len() / cols;
    Tensor::from_data(TensorData::new(values, [rows, cols]), &cpu_backend().device)
}

/// Steps `optimizer` through the case's gradients and compares each step's update from the
/// start with PyTorch's: within 1e-4 of the update's largest value plus the float32 rounding of
/// the parameters themselves (four units in the last place at their largest value).
fn check<O: Optimizer>(optimizer: O, case: &Value, name: &str) {
    let lr = case["lr"].as_f64().unwrap();
    let start = json_floats(&case["start"]);
    let mut param = tensor(start.clone());
    let mut state = None;
    for (step, (grad, expected)) in case["grads"]
        .as_array()
        .unwrap()
        .iter()
        .zip(case["params"].as_array().unwrap())
        .enumerate()
    {
        (param, state) = optimizer.step(lr, param, tensor(json_floats(grad)), state);
        let got = tensor_values(param.clone());
        let update = |p: &[f32]| -> Vec<f32> { p.iter().zip(&start).map(|(a, b)| a - b).collect() };
        let expected_update = update(&json_floats(expected));
        let error = max_abs_diff(&update(&got), &expected_update);
        let rounding = 4.0 * f32::EPSILON * max_abs(&start);
        assert!(
            error <= 1e-4 * max_abs(&expected_update) + rounding,
            "{name}, step {}: update off by {error}",
            step + 1
        );
    }
}

#[test]
fn optimisers_step_as_pytorch() {
    for case in cases("optimizers.json") {
        let kind: OptimizerKind = case["optimizer"].as_str().unwrap().parse().unwrap();
        let settings = OptimizerSettings {
            kind,
            weight_decay: case["weight_decay"].as_f64().unwrap() as f32,
            momentum: case["momentum"].as_f64().unwrap(),
            ..OptimizerSettings::default()
        };
        let name = format!("{kind} momentum {}", settings.momentum);
        match kind {
            OptimizerKind::Sgd => check(settings.sgd().build(), &case, &name),
            _ => check(settings.adam().build(), &case, &name),
        }
    }
}

#[test]
fn schedules_give_torchreids_rate_each_epoch() {
    for case in cases("schedules.json") {
        let schedule = Schedule {
            lr: case["lr"].as_f64().unwrap(),
            scheduler: case["scheduler"]
                .as_str()
                .unwrap()
                .parse::<Scheduler>()
                .unwrap(),
            stepsize: case["stepsize"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as usize)
                .collect(),
            gamma: case["gamma"].as_f64().unwrap(),
            epochs: case["epochs"].as_u64().unwrap() as usize,
            warmup_epochs: 0,
        };
        for (epoch, expected) in case["rates"].as_array().unwrap().iter().enumerate() {
            let expected = expected.as_f64().unwrap();
            let got = schedule.lr(epoch);
            assert!(
                (got - expected).abs() <= 1e-9 * expected.abs().max(1e-12),
                "{} epoch {epoch}: {got} vs PyTorch {expected}",
                schedule.scheduler
            );
        }
    }
}
