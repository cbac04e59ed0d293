//! A training run started from the app, on its own thread: what it has done so far (its
//! epochs, the current epoch's steps), the epochs it evaluated that have not yet become runs,
//! and cancel (the last finished epoch's checkpoint stays).

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use eframe::egui;

use crate::train::history::EpochRecord;
use crate::train::{StepProgress, TrainEvent, TrainSettings, train};

/// What a training run has reported.
#[derive(Debug, Clone, Default)]
pub struct TrainProgress {
    /// The device it runs on, once set up.
    pub device: Option<String>,
    /// Epochs in all.
    pub epochs: usize,
    /// Finished epochs.
    pub history: Vec<EpochRecord>,
    /// The epoch under way.
    pub step: Option<StepProgress>,
    /// The epoch being evaluated.
    pub evaluating: Option<usize>,
    /// `Ok(cancelled)` once it ended, or why it failed.
    pub finished: Option<Result<bool, String>>,
}

impl TrainProgress {
    /// The time the remaining steps take at the current epoch's speed.
    pub fn time_left(&self, batch_size: usize) -> Option<Duration> {
        let step = self.step?;
        if step.images_per_s <= 0.0 {
            return None;
        }
        let steps = (step.batches - step.done.min(step.batches))
            + self.epochs.saturating_sub(step.epoch) * step.batches;
        Some(Duration::from_secs_f64(
            (steps * batch_size) as f64 / step.images_per_s,
        ))
    }
}

/// A training run on its own thread.
pub struct Training {
    /// What it trains.
    pub settings: TrainSettings,
    progress: Arc<Mutex<TrainProgress>>,
    cancel: Arc<AtomicBool>,
    /// Evaluated epochs already handed out by [`Training::new_evaluations`].
    handed_out: usize,
}

impl Training {
    /// Starts training with `settings`; `ctx` is repainted as it reports.
    pub fn start(ctx: &egui::Context, settings: TrainSettings) -> Training {
        let progress = Arc::new(Mutex::new(TrainProgress {
            epochs: settings.schedule.epochs,
            ..TrainProgress::default()
        }));
        let cancel = Arc::new(AtomicBool::new(false));
        let (shared, flag, ctx) = (Arc::clone(&progress), Arc::clone(&cancel), ctx.clone());
        let run = settings.clone();
        let spawned = std::thread::Builder::new()
            .name("training".into())
            .spawn(move || {
                let mut report = |event: TrainEvent| {
                    on_event(&shared, event);
                    ctx.request_repaint();
                };
                let result =
                    std::panic::catch_unwind(AssertUnwindSafe(|| train(&run, &mut report, &flag)));
                let finished = match result {
                    Ok(Ok(outcome)) => Ok(outcome.cancelled),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(_) => Err("training stopped on an internal error".to_string()),
                };
                let mut p = shared.lock().expect("training progress poisoned");
                p.step = None;
                p.evaluating = None;
                p.finished = Some(finished);
                drop(p);
                ctx.request_repaint();
            });
        if let Err(e) = spawned {
            progress
                .lock()
                .expect("training progress poisoned")
                .finished = Some(Err(format!("cannot start the training thread: {e}")));
        }
        Training {
            settings,
            progress,
            cancel,
            handed_out: 0,
        }
    }

    /// Stops after the current step.
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }

    /// True until it has ended.
    pub fn running(&self) -> bool {
        self.progress().finished.is_none()
    }

    fn progress(&self) -> std::sync::MutexGuard<'_, TrainProgress> {
        self.progress.lock().expect("training progress poisoned")
    }

    /// What it has reported so far.
    pub fn snapshot(&self) -> TrainProgress {
        self.progress().clone()
    }

    /// Epochs evaluated since the last call.
    pub fn new_evaluations(&mut self) -> Vec<usize> {
        let evaluated: Vec<usize> = self
            .progress()
            .history
            .iter()
            .filter(|r| r.evaluation.is_some())
            .map(|r| r.epoch)
            .collect();
        let new = evaluated[self.handed_out.min(evaluated.len())..].to_vec();
        self.handed_out = evaluated.len();
        new
    }
}

/// Records one event of the trainer.
fn on_event(progress: &Mutex<TrainProgress>, event: TrainEvent) {
    let mut p = progress.lock().expect("training progress poisoned");
    match event {
        TrainEvent::Started(start) => {
            p.device = Some(start.device.clone());
            p.epochs = start.epochs;
        }
        TrainEvent::Step(step) => p.step = Some(step),
        TrainEvent::Evaluating(epoch) => p.evaluating = Some(epoch),
        TrainEvent::Epoch(record) => {
            p.evaluating = None;
            p.history.push(record.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_left_counts_this_epochs_rest_and_the_epochs_after() {
        let progress = TrainProgress {
            epochs: 3,
            step: Some(StepProgress {
                epoch: 2,
                done: 6,
                batches: 10,
                loss: 1.0,
                accuracy: 0.5,
                images_per_s: 32.0,
            }),
            ..TrainProgress::default()
        };
        // 4 steps left in epoch 2 and 10 in epoch 3, of 32 images at 32 images/s.
        assert_eq!(progress.time_left(32), Some(Duration::from_secs(14)));
    }
}
