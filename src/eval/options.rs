//! What an evaluation is asked for: the distance, the protocol, re-ranking and query expansion.

use crate::names::named_enum;

named_enum! {
    /// How two feature vectors are compared.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub enum Metric("metric") {
        /// Squared euclidean distance.
        #[default]
        Euclidean = "euclidean",
        /// `1 − cos(a, b)`.
        Cosine = "cosine",
    }
}

/// Re-ranking parameters (Torchreid's defaults: k1 = 20, k2 = 6, λ = 0.3).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RerankParams {
    /// Size of the k-reciprocal neighbourhood.
    pub k1: usize,
    /// Size of the neighbourhood the encodings are averaged over.
    pub k2: usize,
    /// Weight of the original distance.
    pub lambda: f32,
}

impl Default for RerankParams {
    fn default() -> Self {
        RerankParams {
            k1: 20,
            k2: 6,
            lambda: 0.3,
        }
    }
}

named_enum! {
    /// Evaluation protocol.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub enum Protocol("protocol") {
        /// Market-1501: every non-junk gallery image counts.
        #[default]
        Market = "market",
        /// CUHK03 single-gallery-shot CMC (10 seeded draws of one image per identity).
        Cuhk03 = "cuhk03",
    }
}

/// How features are compared and scored.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalOptions {
    /// Distance.
    pub metric: Metric,
    /// L2-normalise features first.
    pub normalize: bool,
    /// Scoring protocol.
    pub protocol: Protocol,
    /// k-reciprocal re-ranking, if wanted.
    pub rerank: Option<RerankParams>,
    /// Average query expansion before the distance.
    pub aqe: bool,
    /// Length of the CMC curve.
    pub max_rank: usize,
    /// Seed of the CUHK03 draws.
    pub seed: u64,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            metric: Metric::Euclidean,
            normalize: false,
            protocol: Protocol::Market,
            rerank: None,
            aqe: false,
            max_rank: 50,
            seed: 0,
        }
    }
}
