//! Sources of model parameters: a PyTorch checkpoint or seeded random values.

use crate::models::checkpoint::Checkpoint;
use crate::models::error::ModelError;

/// Where a network's parameters come from while it is being built.
pub trait WeightSource {
    /// The tensor stored under `key` (PyTorch naming, without prefixes) as f32 values in
    /// row-major order; fails unless it exists with exactly `shape`.
    fn take(&mut self, key: &str, shape: &[usize]) -> Result<Vec<f32>, ModelError>;

    /// The batch count stored under `key` (`num_batches_tracked`), if the source has one.
    fn take_count(&mut self, key: &str) -> Result<Option<u64>, ModelError> {
        let _ = key;
        Ok(None)
    }

    /// The shape of the tensor under `key`, if the source holds one (random sources hold none).
    fn shape_of(&self, key: &str) -> Option<Vec<usize>> {
        let _ = key;
        None
    }

    /// Torchreid's identity classifier (`classifier.weight` `[classes, features]` and
    /// `classifier.bias`), if the source holds one of that form: a feature extractor does not
    /// run it, but exports keep it.
    fn take_classifier(&mut self, features: usize) -> Result<Option<Classifier>, ModelError> {
        let _ = features;
        Ok(None)
    }

    /// Called once the network is built: fails on stored parameters the network did not use.
    fn finish(&mut self) -> Result<(), ModelError>;
}

/// A linear identity classifier as Torchreid stores it.
#[derive(Debug, Clone)]
pub struct Classifier {
    /// `[classes, features]`, row-major.
    pub weight: Vec<f32>,
    /// `[classes]`.
    pub bias: Vec<f32>,
    /// Number of identities.
    pub classes: usize,
}

/// Key suffixes PyTorch stores that carry no parameter of an eval-mode network.
const BOOKKEEPING_SUFFIXES: [&str; 1] = ["num_batches_tracked"];

impl WeightSource for Checkpoint {
    fn take(&mut self, key: &str, shape: &[usize]) -> Result<Vec<f32>, ModelError> {
        self.read_f32(key, shape)
    }

    fn take_count(&mut self, key: &str) -> Result<Option<u64>, ModelError> {
        self.read_count(key)
    }

    fn shape_of(&self, key: &str) -> Option<Vec<usize>> {
        Checkpoint::shape_of(self, key)
    }

    fn take_classifier(&mut self, features: usize) -> Result<Option<Classifier>, ModelError> {
        let weight_shape = Checkpoint::shape_of(self, "classifier.weight");
        let Some(&[classes, columns]) = weight_shape.as_deref() else {
            return Ok(None);
        };
        if columns != features
            || Checkpoint::shape_of(self, "classifier.bias") != Some(vec![classes])
        {
            return Ok(None);
        }
        Ok(Some(Classifier {
            weight: self.read_f32("classifier.weight", &[classes, features])?,
            bias: self.read_f32("classifier.bias", &[classes])?,
            classes,
        }))
    }

    fn finish(&mut self) -> Result<(), ModelError> {
        let unused: Vec<&String> = self
            .unused_keys()
            .into_iter()
            .filter(|k| !BOOKKEEPING_SUFFIXES.iter().any(|s| k.ends_with(s)))
            .filter(|k| !Checkpoint::is_head_key(k))
            .collect();
        match unused.first() {
            None => Ok(()),
            Some(first) => Err(ModelError::UnexpectedKey {
                file: self.path().to_path_buf(),
                key: (*first).clone(),
                shape: self.shape_of(first).unwrap_or_default(),
                count: unused.len(),
            }),
        }
    }
}

/// Deterministic pseudo-random parameters, for benchmarks without a checkpoint.
///
/// Values are scaled so activations stay in range: weights ~ U(-a, a) with a = sqrt(3 / fan_in),
/// BatchNorm variances in [0.5, 1.5], other 1-D parameters near their neutral values.
#[derive(Debug)]
pub struct RandomWeights {
    state: u64,
}

impl RandomWeights {
    /// A source seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            state: seed ^ 0x9E37_79B9_7F4A_7C15,
        }
    }

    /// Next value uniform in [0, 1) (SplitMix64).
    fn next_unit(&mut self) -> f32 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 40) as f32 / (1u64 << 24) as f32
    }
}

impl WeightSource for RandomWeights {
    fn take(&mut self, key: &str, shape: &[usize]) -> Result<Vec<f32>, ModelError> {
        let n: usize = shape.iter().product();
        let (low, high) = if key.ends_with("running_var") {
            (0.5, 1.5)
        } else if shape.len() == 1 && key.ends_with(".weight") {
            (0.8, 1.2)
        } else if shape.len() == 1 {
            (-0.1, 0.1)
        } else {
            let fan_in: usize = shape[1..].iter().product();
            let a = (3.0 / fan_in.max(1) as f32).sqrt();
            (-a, a)
        };
        Ok((0..n)
            .map(|_| low + (high - low) * self.next_unit())
            .collect())
    }

    fn finish(&mut self) -> Result<(), ModelError> {
        Ok(())
    }
}
