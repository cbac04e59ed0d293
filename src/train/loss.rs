//! Torchreid's re-identification losses as differentiable Burn expressions: cross-entropy with
//! label smoothing and the batch-hard triplet loss.

use burn::tensor::activation::{log_softmax, relu};
use burn::tensor::{Tensor, TensorData};

/// Distance added to pairs a mining step must not pick (far beyond any feature distance).
const EXCLUDED: f32 = 1e9;

/// Cross-entropy of `logits` `[n, classes]` against `labels`, with the targets smoothed to
/// `(1 − ε)·one_hot + ε / classes` (Torchreid's `CrossEntropyLoss`, ε = 0.1 by default).
/// Returns a one-element tensor.
pub fn cross_entropy(logits: Tensor<2>, labels: &[usize], epsilon: f32) -> Tensor<1> {
    let [n, classes] = logits.dims();
    let mut targets = vec![epsilon / classes as f32; n * classes];
    for (row, &label) in labels.iter().enumerate() {
        targets[row * classes + label] += 1.0 - epsilon;
    }
    let targets = Tensor::<2>::from_data(
        TensorData::new(targets, [n, classes]),
        (&logits.device(), logits.dtype()),
    );
    (targets * log_softmax(logits, 1))
        .sum()
        .neg()
        .div_scalar(n as f32)
}

/// Batch-hard triplet loss on euclidean distances (Torchreid's `TripletLoss`): for each anchor
/// its farthest sample of the same identity and its nearest of another,
/// `mean(max(0, d_ap − d_an + margin))`. Returns a one-element tensor.
pub fn batch_hard_triplet(features: Tensor<2>, labels: &[usize], margin: f32) -> Tensor<1> {
    let [n, _] = features.dims();
    let squared = features.clone().square().sum_dim(1);
    let products = features.clone().matmul(features.transpose());
    let distances = (squared.clone() + squared.transpose() - products.mul_scalar(2.0))
        .clamp_min(1e-12)
        .sqrt();
    let same: Vec<f32> = (0..n * n)
        .map(|i| f32::from(u8::from(labels[i / n] == labels[i % n])))
        .collect();
    let options = (&distances.device(), distances.dtype());
    let same = Tensor::<2>::from_data(TensorData::new(same, [n, n]), options);
    let positives = distances.clone() - same.clone().neg().add_scalar(1.0).mul_scalar(EXCLUDED);
    let negatives = distances + same.mul_scalar(EXCLUDED);
    let hardest_positive = positives.max_dim(1);
    let hardest_negative = negatives.min_dim(1);
    relu(hardest_positive - hardest_negative + margin).mean()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    fn tensor(values: Vec<f32>, shape: [usize; 2]) -> Tensor<2> {
        Tensor::from_data(TensorData::new(values, shape), &Device::flex())
    }

    fn scalar(t: Tensor<1>) -> f32 {
        t.into_scalar::<f32>()
    }

    #[test]
    fn smoothed_cross_entropy_of_uniform_logits_is_log_classes() {
        let logits = tensor(vec![0.0; 8], [2, 4]);
        let loss = scalar(cross_entropy(logits, &[1, 3], 0.1));
        assert!((loss - 4f32.ln()).abs() < 1e-6, "{loss}");
    }

    #[test]
    fn triplet_loss_of_separated_identities_is_zero() {
        // Two identities 10 apart, each pair 1 apart: every anchor meets the margin.
        let features = tensor(vec![0.0, 0.0, 1.0, 0.0, 10.0, 0.0, 11.0, 0.0], [4, 2]);
        assert_eq!(
            scalar(batch_hard_triplet(features, &[0, 0, 1, 1], 0.3)),
            0.0
        );
        // Identities 1 apart, pairs 2 apart: d_ap − d_an + m = 2 − 1 + 0.3 for every anchor.
        let features = tensor(vec![0.0, 0.0, 2.0, 0.0, 1.0, 0.0, 3.0, 0.0], [4, 2]);
        let loss = scalar(batch_hard_triplet(features, &[0, 0, 1, 1], 0.3));
        assert!((loss - 1.3).abs() < 1e-5, "{loss}");
    }
}
