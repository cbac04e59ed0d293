//! CUHK03 single-gallery-shot CMC, as Torchreid's `eval_cuhk03`: per query and repeat, one
//! gallery image per identity is drawn at random (junk removed first); the CMC averages the
//! first-hit ranks of 10 draws. Draws are seeded per query, so results are reproducible.

use std::collections::HashMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::label::Label;

/// Random draws per query (as Torchreid).
pub const CUHK03_REPEATS: usize = 10;

/// Gallery indices grouped by identity.
#[derive(Debug, Clone)]
pub struct GalleryGroups {
    groups: Vec<(i64, Vec<usize>)>,
}

impl GalleryGroups {
    /// Groups the gallery by pid.
    pub fn new(gallery: &[Label]) -> Self {
        let mut by_pid: HashMap<i64, Vec<usize>> = HashMap::new();
        for (g, label) in gallery.iter().enumerate() {
            by_pid.entry(label.pid).or_default().push(g);
        }
        let mut groups: Vec<_> = by_pid.into_iter().collect();
        groups.sort_unstable_by_key(|(pid, _)| *pid);
        GalleryGroups { groups }
    }
}

/// First-hit ranks of `CUHK03_REPEATS` draws for one valid query (`row`: its distances).
pub fn sampled_first_hits(
    row: &[f32],
    query: Label,
    query_index: usize,
    gallery: &[Label],
    groups: &GalleryGroups,
    seed: u64,
) -> Vec<usize> {
    let mut rng =
        StdRng::seed_from_u64(seed ^ (query_index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let before = |a: usize, b: usize| row[a].total_cmp(&row[b]).then(a.cmp(&b)).is_lt();
    let mut draws = Vec::with_capacity(CUHK03_REPEATS);
    for _ in 0..CUHK03_REPEATS {
        let mut hit = None;
        let mut picks = Vec::with_capacity(groups.groups.len());
        for (pid, members) in &groups.groups {
            if *pid == query.pid {
                let kept: Vec<usize> = members
                    .iter()
                    .copied()
                    .filter(|&g| gallery[g].camid != query.camid)
                    .collect();
                if !kept.is_empty() {
                    hit = Some(kept[rng.random_range(0..kept.len())]);
                }
            } else {
                picks.push(members[rng.random_range(0..members.len())]);
            }
        }
        let Some(hit) = hit else {
            return Vec::new();
        };
        draws.push(picks.into_iter().filter(|&p| before(p, hit)).count());
    }
    draws
}

/// CMC over valid queries from their sampled first-hit ranks.
pub fn sampled_cmc(draws: &[Vec<usize>], max_rank: usize) -> Vec<f64> {
    let mut cmc = vec![0f64; max_rank];
    for query in draws {
        let mut within = vec![0usize; max_rank];
        for &first in query.iter().filter(|&&f| f < max_rank) {
            within[first] += 1;
        }
        let mut cumulative = 0;
        for (value, count) in cmc.iter_mut().zip(within) {
            cumulative += count;
            *value += cumulative as f64 / query.len() as f64;
        }
    }
    cmc.iter_mut().for_each(|v| *v /= draws.len() as f64);
    cmc
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(pid: i64, camid: i64) -> Label {
        Label { pid, camid }
    }

    #[test]
    fn one_image_per_identity_makes_draws_deterministic() {
        // Gallery: pid 2 nearest, then the query's pid 1 (other camera), then pid 3.
        let gallery = [label(2, 0), label(1, 1), label(3, 0), label(1, 0)];
        let row = [0.1, 0.2, 0.3, 0.0]; // index 3 is junk (same camera) and ignored
        let groups = GalleryGroups::new(&gallery);
        let draws = sampled_first_hits(&row, label(1, 0), 0, &gallery, &groups, 7);
        assert_eq!(draws, vec![1; CUHK03_REPEATS]);
        assert_eq!(sampled_cmc(&[draws], 3), vec![0.0, 1.0, 1.0]);
    }

    #[test]
    fn draws_mix_and_repeat_with_the_seed() {
        // pid 2 has a near and a far image: the hit is at rank 0 or 1 depending on the draw.
        let gallery = [label(2, 0), label(1, 1), label(2, 1)];
        let row = [0.1, 0.2, 0.9];
        let groups = GalleryGroups::new(&gallery);
        let draws: Vec<Vec<usize>> = (0..20)
            .map(|q| sampled_first_hits(&row, label(1, 0), q, &gallery, &groups, 1))
            .collect();
        let all: Vec<usize> = draws.iter().flatten().copied().collect();
        assert!(all.contains(&0) && all.contains(&1), "{all:?}");
        let again = sampled_first_hits(&row, label(1, 0), 3, &gallery, &groups, 1);
        assert_eq!(again, draws[3]);
        let cmc = sampled_cmc(&draws, 2);
        let zeros = all.iter().filter(|&&d| d == 0).count() as f64;
        assert!((cmc[0] - zeros / all.len() as f64).abs() < 1e-12);
        assert!((cmc[1] - 1.0).abs() < 1e-12);
    }
}
