//! Dynamic loss scaling for mixed-precision training (as Apex's O2 and PyTorch's `GradScaler`):
//! the loss is multiplied by the scale before the f16 backward pass; gradients are divided by
//! it before the f32 step. A step whose gradients hold an infinity or NaN is skipped and the
//! scale halved; after 2000 clean steps in a row the scale doubles.

/// The first scale unless told otherwise, 2^16 (Apex's and PyTorch's).
pub const INITIAL: f32 = 65536.0;
/// Clean steps before the scale doubles.
pub const GROWTH_INTERVAL: u32 = 2000;
/// The smallest scale (a scale below 1 only loses precision).
const MINIMUM: f32 = 1.0;

/// The loss scale and what it has done.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossScale {
    scale: f32,
    clean_steps: u32,
    skipped: u64,
}

impl Default for LossScale {
    fn default() -> Self {
        LossScale::resumed(INITIAL, 0)
    }
}

impl LossScale {
    /// A scale that starts at `scale` (at least 1) with `clean_steps` clean steps already
    /// counted towards the next doubling (0 for a new run).
    pub fn resumed(scale: f32, clean_steps: u32) -> Self {
        LossScale {
            scale: scale.max(MINIMUM),
            clean_steps: clean_steps.min(GROWTH_INTERVAL - 1),
            skipped: 0,
        }
    }

    /// Clean steps in a row since the last overflow or doubling.
    pub fn clean_steps(&self) -> u32 {
        self.clean_steps
    }

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
    fn a_resumed_scale_keeps_its_count_of_clean_steps() {
        let mut scale = LossScale::resumed(128.0, 1998);
        assert!(scale.update(true));
        assert_eq!((scale.scale(), scale.clean_steps()), (128.0, 1999));
        assert!(scale.update(true));
        assert_eq!((scale.scale(), scale.clean_steps()), (256.0, 0));
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
