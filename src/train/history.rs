//! `history.csv`: one row per epoch of a training run, rewritten atomically after each epoch
//! and read back to resume a run or to draw its curves.

use std::path::Path;

use crate::io::{read_text_file, write_atomic};

/// The largest `history.csv` read (one short row per epoch).
const MAX_HISTORY_BYTES: u64 = 64 << 20;

/// The columns, in order.
pub const HEADER: &str =
    "epoch,loss,loss_softmax,loss_triplet,accuracy,lr,images_per_s,skipped_steps,rank1,mAP";

/// What one epoch did.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochRecord {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean total loss over the epoch's batches.
    pub loss: f64,
    /// Mean cross-entropy loss (0 when not used).
    pub loss_softmax: f64,
    /// Mean triplet loss (0 when not used).
    pub loss_triplet: f64,
    /// Training accuracy of the classifier over the epoch, in [0, 1].
    pub accuracy: f64,
    /// Learning rate of the epoch.
    pub lr: f64,
    /// Training throughput.
    pub images_per_s: f64,
    /// Optimiser steps skipped for non-finite gradients (mixed precision).
    pub skipped_steps: u64,
    /// Rank-1 and mAP when the epoch ended with an evaluation.
    pub evaluation: Option<(f64, f64)>,
}

impl EpochRecord {
    fn row(&self) -> String {
        let (rank1, map) = self
            .evaluation
            .map_or((String::new(), String::new()), |(r, m)| {
                (r.to_string(), m.to_string())
            });
        format!(
            "{},{},{},{},{},{},{},{},{rank1},{map}",
            self.epoch,
            self.loss,
            self.loss_softmax,
            self.loss_triplet,
            self.accuracy,
            self.lr,
            self.images_per_s,
            self.skipped_steps
        )
    }

    fn parse(line: &str) -> Option<EpochRecord> {
        let fields: Vec<&str> = line.split(',').collect();
        if fields.len() != HEADER.split(',').count() {
            return None;
        }
        let float = |i: usize| fields[i].parse::<f64>().ok();
        let evaluation = match (fields[8], fields[9]) {
            ("", "") => None,
            _ => Some((float(8)?, float(9)?)),
        };
        Some(EpochRecord {
            epoch: fields[0].parse().ok()?,
            loss: float(1)?,
            loss_softmax: float(2)?,
            loss_triplet: float(3)?,
            accuracy: float(4)?,
            lr: float(5)?,
            images_per_s: float(6)?,
            skipped_steps: fields[7].parse().ok()?,
            evaluation,
        })
    }
}

/// Writes `records` as `path` (header and one row each), atomically.
pub fn write_history(path: &Path, records: &[EpochRecord]) -> std::io::Result<()> {
    write_atomic(path, |w| {
        writeln!(w, "{HEADER}")?;
        for record in records {
            writeln!(w, "{}", record.row())?;
        }
        Ok(())
    })
}

/// Reads a file written by [`write_history`]; an error names the line that does not parse.
pub fn read_history(path: &Path) -> Result<Vec<EpochRecord>, String> {
    let text =
        read_text_file(path, MAX_HISTORY_BYTES).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut lines = text.lines();
    if lines.next() != Some(HEADER) {
        return Err(format!(
            "{}: line 1 is not the history header `{HEADER}`",
            path.display()
        ));
    }
    lines
        .enumerate()
        .map(|(i, line)| {
            EpochRecord::parse(line).ok_or_else(|| {
                format!(
                    "{}: line {} is not an epoch row ({} comma-separated numbers)",
                    path.display(),
                    i + 2,
                    HEADER.split(',').count()
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(epoch: usize, evaluation: Option<(f64, f64)>) -> EpochRecord {
        EpochRecord {
            epoch,
            loss: 3.25,
            loss_softmax: 2.5,
            loss_triplet: 0.75,
            accuracy: 0.5,
            lr: 3e-4,
            images_per_s: 41.5,
            skipped_steps: 2,
            evaluation,
        }
    }

    #[test]
    fn history_round_trips_with_and_without_evaluations() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.csv");
        let records = vec![record(1, None), record(2, Some((0.75, 0.5)))];
        write_history(&path, &records).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            format!(
                "{HEADER}\n1,3.25,2.5,0.75,0.5,0.0003,41.5,2,,\n2,3.25,2.5,0.75,0.5,0.0003,41.5,2,0.75,0.5\n"
            )
        );
        assert_eq!(read_history(&path).unwrap(), records);
    }

    #[test]
    fn a_damaged_row_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.csv");
        std::fs::write(&path, format!("{HEADER}\n1,2,3\n")).unwrap();
        let error = read_history(&path).unwrap_err();
        assert!(error.contains("line 2"), "{error}");
    }
}
