//! Learning rate per epoch, as Torchreid's `build_lr_scheduler` sets it (PyTorch's `StepLR`,
//! `MultiStepLR`, `CosineAnnealingLR` stepped once per epoch), optionally after a linear
//! warm-up.

use crate::names::named_enum;

/// Learning-rate factor at the first warm-up epoch; it rises linearly to 1.
const WARMUP_START: f64 = 0.1;

named_enum! {
    /// How the learning rate falls over the epochs.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Scheduler("scheduler") {
        /// × gamma every `stepsize` epochs.
        SingleStep = "single-step",
        /// × gamma at each listed epoch.
        MultiStep = "multi-step",
        /// Cosine annealing from the base rate to 0 over all epochs.
        Cosine = "cosine",
    }
}

/// A learning-rate schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    /// Base learning rate.
    pub lr: f64,
    /// The decay.
    pub scheduler: Scheduler,
    /// Step size (single-step: the first value) or milestones (multi-step), in epochs.
    pub stepsize: Vec<usize>,
    /// Decay factor of the step schedulers.
    pub gamma: f64,
    /// Epochs of the whole run (the cosine's period).
    pub epochs: usize,
    /// Epochs of linear warm-up, from 0.1 × the scheduled rate up to it.
    pub warmup_epochs: usize,
}

impl Schedule {
    /// The learning rate used during 0-based `epoch`.
    pub fn lr(&self, epoch: usize) -> f64 {
        let decayed = match self.scheduler {
            Scheduler::SingleStep => {
                let step = self.stepsize.first().copied().unwrap_or(1).max(1);
                self.lr * self.gamma.powi((epoch / step) as i32)
            }
            Scheduler::MultiStep => {
                let passed = self.stepsize.iter().filter(|&&m| m <= epoch).count();
                self.lr * self.gamma.powi(passed as i32)
            }
            Scheduler::Cosine => {
                let period = self.epochs.max(1) as f64;
                self.lr * (1.0 + (std::f64::consts::PI * epoch as f64 / period).cos()) / 2.0
            }
        };
        if epoch < self.warmup_epochs {
            let progress = epoch as f64 / self.warmup_epochs as f64;
            decayed * (WARMUP_START + (1.0 - WARMUP_START) * progress)
        } else {
            decayed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warm_up_rises_linearly_to_the_scheduled_rate() {
        let schedule = Schedule {
            lr: 1.0,
            scheduler: Scheduler::SingleStep,
            stepsize: vec![100],
            gamma: 0.1,
            epochs: 100,
            warmup_epochs: 4,
        };
        for (epoch, expected) in [0.1, 0.325, 0.55, 0.775, 1.0, 1.0].into_iter().enumerate() {
            assert!(
                (schedule.lr(epoch) - expected).abs() < 1e-12,
                "epoch {epoch}"
            );
        }
    }
}
