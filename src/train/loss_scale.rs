//! Dynamic loss scaling for mixed-precision training (as Apex's O2 and PyTorch's `GradScaler`):
//! the loss is multiplied by the scale before the f16 backward pass; gradients are divided by
//! it before the f32 step. A step whose gradients hold an infinity or NaN is skipped and the
//! scale halved; after 2000 clean steps in a row the scale doubles.

/// The first scale, 2^16.
const INITIAL: f32 = 65536.0;
/// Clean steps before the scale doubles.
const GROWTH_INTERVAL: u32 = 2000;
/// The smallest scale (a scale below 1 only loses precision).
const MINIMUM: f32 = 1.0;

/// The loss scale and what it has done.
#[derive(Debug, Clone, PartialEq)]
pub struct LossScale {
    scale: f32,
    clean_steps: u32,
    skipped: u64,
}

impl Default for LossScale {
    fn default() -> Self {
        LossScale {
            scale: INITIAL,
            clean_steps: 0,
            skipped: 0,
        }
    }
}

impl LossScale {
    /// The factor the loss is multiplied by before the backward pass.
    pub fn scale(&self) -> f32 {
        self.scale
    }

    /// Steps skipped so far because of non-finite gradients.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Records one backward pass whose scaled gradients were all finite or not; returns
    /// whether the optimiser may step (`false`: skip this step).
    pub fn update(&mut self, gradients_finite: bool) -> bool {
        if gradients_finite {
            self.clean_steps += 1;
            if self.clean_steps == GROWTH_INTERVAL {
                self.scale *= 2.0;
                self.clean_steps = 0;
            }
        } else {
            self.scale = (self.scale / 2.0).max(MINIMUM);
            self.clean_steps = 0;
            self.skipped += 1;
        }
        gradients_finite
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overflow_halves_and_skips_and_clean_runs_double() {
        let mut scale = LossScale::default();
        assert_eq!(scale.scale(), 65536.0);
        assert!(!scale.update(false));
        assert!(!scale.update(false));
        assert_eq!((scale.scale(), scale.skipped()), (16384.0, 2));
        for _ in 0..1999 {
            assert!(scale.update(true));
        }
        assert_eq!(scale.scale(), 16384.0);
        assert!(scale.update(true));
        assert_eq!(scale.scale(), 32768.0);
        // An overflow restarts the count of clean steps.
        for _ in 0..1999 {
            scale.update(true);
        }
        scale.update(false);
        scale.update(true);
        assert_eq!((scale.scale(), scale.skipped()), (16384.0, 3));
    }

    #[test]
    fn the_scale_never_falls_below_one() {
        let mut scale = LossScale::default();
        for _ in 0..40 {
            scale.update(false);
        }
        assert_eq!(scale.scale(), 1.0);
    }
}
