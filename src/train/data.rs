//! The train split as training sees it: each sample's identity relabelled to 0..N in
//! ascending pid order, as Torchreid relabels its train sets.

use std::collections::BTreeMap;

use crate::data::Sample;

/// Training labels of a train split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Labels {
    /// The label of each sample, in sample order.
    pub of_sample: Vec<usize>,
    /// The dataset pid of each label (ascending).
    pub pids: Vec<i64>,
}

impl Labels {
    /// Relabels `train`'s pids to 0..N in ascending pid order.
    pub fn new(train: &[Sample]) -> Labels {
        let mut label_of: BTreeMap<i64, usize> = train.iter().map(|s| (s.pid, 0)).collect();
        for (label, value) in label_of.values_mut().enumerate() {
            *value = label;
        }
        Labels {
            of_sample: train.iter().map(|s| label_of[&s.pid]).collect(),
            pids: label_of.into_keys().collect(),
        }
    }

    /// Number of identities (the classifier's size).
    pub fn identities(&self) -> usize {
        self.pids.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn pids_become_labels_in_ascending_order() {
        let sample = |pid| Sample {
            path: PathBuf::from(format!("{pid}.jpg")),
            pid,
            camid: 0,
        };
        let train: Vec<Sample> = [42, 7, 42, 1500, 7].into_iter().map(sample).collect();
        let labels = Labels::new(&train);
        assert_eq!(labels.of_sample, vec![1, 0, 1, 2, 0]);
        assert_eq!(labels.pids, vec![7, 42, 1500]);
        assert_eq!(labels.identities(), 3);
    }
}
