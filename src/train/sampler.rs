//! Torchreid's `RandomIdentitySampler`: every batch holds P identities with K images each.
//!
//! Per epoch, each identity's images are shuffled (drawn K times with replacement when it has
//! fewer than K) and cut into groups of K; then P identities at a time are drawn among those
//! with a group left, each giving its next group, until fewer than P identities are left. The
//! index list is cut into batches of the batch size and a short last batch is dropped, as
//! Torchreid's training loader does (`drop_last=True`).

use rand::Rng;
use rand::seq::{IndexedRandom, SliceRandom};

/// Why batches cannot be drawn.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SamplerError {
    /// K is zero, or larger than the batch.
    #[error("--instances must be between 1 and --batch-size ({batch_size}), got {instances}")]
    Instances {
        /// Images per identity asked for.
        instances: usize,
        /// The batch size.
        batch_size: usize,
    },
    /// Fewer identities than one batch needs.
    #[error(
        "the train split has {identities} identities, but a batch of {batch_size} with {instances} images each needs {needed}"
    )]
    TooFewIdentities {
        /// Identities in the train split.
        identities: usize,
        /// Identities one batch needs (P).
        needed: usize,
        /// The batch size.
        batch_size: usize,
        /// Images per identity (K).
        instances: usize,
    },
}

/// Draws P×K batches of sample indices.
#[derive(Debug, Clone)]
pub struct IdentitySampler {
    /// Sample indices of each identity (by training label).
    by_identity: Vec<Vec<usize>>,
    batch_size: usize,
    instances: usize,
}

impl IdentitySampler {
    /// A sampler over samples whose training labels (0..N, see [`super::data::Labels`]) are
    /// `labels`, drawing `batch_size` images per batch, `instances` (K) per identity.
    pub fn new(
        labels: &[usize],
        batch_size: usize,
        instances: usize,
    ) -> Result<IdentitySampler, SamplerError> {
        if instances == 0 || instances > batch_size {
            return Err(SamplerError::Instances {
                instances,
                batch_size,
            });
        }
        let identities = labels.iter().max().map_or(0, |&m| m + 1);
        let mut by_identity = vec![Vec::new(); identities];
        for (index, &label) in labels.iter().enumerate() {
            by_identity[label].push(index);
        }
        by_identity.retain(|images| !images.is_empty());
        let needed = batch_size / instances;
        if by_identity.len() < needed {
            return Err(SamplerError::TooFewIdentities {
                identities: by_identity.len(),
                needed,
                batch_size,
                instances,
            });
        }
        Ok(IdentitySampler {
            by_identity,
            batch_size,
            instances,
        })
    }

    /// Identities per batch (P).
    pub fn identities_per_batch(&self) -> usize {
        self.batch_size / self.instances
    }

    /// One epoch's batches, each `batch_size` sample indices.
    pub fn epoch(&self, rng: &mut impl Rng) -> Vec<Vec<usize>> {
        let k = self.instances;
        let mut groups: Vec<Vec<Vec<usize>>> = self
            .by_identity
            .iter()
            .map(|images| {
                let mut drawn = if images.len() < k {
                    (0..k)
                        .map(|_| *images.choose(rng).expect("identities have images"))
                        .collect()
                } else {
                    images.clone()
                };
                drawn.shuffle(rng);
                // Groups are taken from the front, so keep them in reverse for `pop`.
                let mut chunks: Vec<Vec<usize>> =
                    drawn.chunks_exact(k).map(<[usize]>::to_vec).collect();
                chunks.reverse();
                chunks
            })
            .collect();
        let per_batch = self.identities_per_batch();
        let mut available: Vec<usize> = (0..groups.len()).collect();
        let mut order = Vec::new();
        while available.len() >= per_batch {
            let chosen: Vec<usize> = available.choose_multiple(rng, per_batch).copied().collect();
            for identity in chosen {
                let group = groups[identity]
                    .pop()
                    .expect("available identities have a group");
                order.extend(group);
                if groups[identity].is_empty() {
                    available.retain(|&a| a != identity);
                }
            }
        }
        order
            .chunks_exact(self.batch_size)
            .map(<[usize]>::to_vec)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use std::collections::{BTreeMap, BTreeSet};

    /// Identity `i` has `counts[i]` samples, stored identity after identity.
    fn labels(counts: &[usize]) -> Vec<usize> {
        counts
            .iter()
            .enumerate()
            .flat_map(|(label, &n)| std::iter::repeat_n(label, n))
            .collect()
    }

    #[test]
    fn batches_hold_p_identities_with_k_images_each() {
        let labels = labels(&[4, 8, 5, 6, 4, 9, 4, 7]);
        let sampler = IdentitySampler::new(&labels, 8, 4).unwrap();
        let batches = sampler.epoch(&mut StdRng::seed_from_u64(1));
        assert!(!batches.is_empty());
        let mut seen = BTreeSet::new();
        for batch in &batches {
            assert_eq!(batch.len(), 8);
            let mut per_identity: BTreeMap<usize, usize> = BTreeMap::new();
            for &i in batch {
                *per_identity.entry(labels[i]).or_default() += 1;
                assert!(seen.insert(i), "sample {i} drawn twice in an epoch");
            }
            assert_eq!(per_identity.len(), 2, "{per_identity:?}");
            assert!(per_identity.values().all(|&n| n == 4), "{per_identity:?}");
        }
    }

    #[test]
    fn identities_with_fewer_than_k_images_are_drawn_with_replacement() {
        let labels = labels(&[1, 2, 4]);
        let sampler = IdentitySampler::new(&labels, 4, 4).unwrap();
        let batches = sampler.epoch(&mut StdRng::seed_from_u64(3));
        // One group of four per identity, one identity per batch.
        assert_eq!(batches.len(), 3);
        for batch in &batches {
            let identities: BTreeSet<usize> = batch.iter().map(|&i| labels[i]).collect();
            assert_eq!(identities.len(), 1);
        }
    }

    #[test]
    fn epochs_differ_and_a_seed_repeats_them() {
        let labels = labels(&[6; 10]);
        let sampler = IdentitySampler::new(&labels, 8, 2).unwrap();
        let a = sampler.epoch(&mut StdRng::seed_from_u64(7));
        let b = sampler.epoch(&mut StdRng::seed_from_u64(7));
        let c = sampler.epoch(&mut StdRng::seed_from_u64(8));
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn impossible_batches_are_clear_errors() {
        let labels = labels(&[4, 4, 4]);
        let too_few = IdentitySampler::new(&labels, 16, 4).unwrap_err();
        assert_eq!(
            too_few.to_string(),
            "the train split has 3 identities, but a batch of 16 with 4 images each needs 4"
        );
        assert!(matches!(
            IdentitySampler::new(&labels, 4, 8),
            Err(SamplerError::Instances { .. })
        ));
        assert!(matches!(
            IdentitySampler::new(&labels, 4, 0),
            Err(SamplerError::Instances { .. })
        ));
    }
}
