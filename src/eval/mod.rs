//! Evaluation: distances, re-ranking and ranking quality of gallery lists per query (CMC, mAP,
//! mINP) under the Market-1501 and CUHK03 protocols.

mod aqe;
pub mod cuhk03;
pub mod distance;
mod evaluate;
pub mod inspect;
mod neighbors;
pub mod rank;
pub mod rerank;

pub use distance::Metric;
pub use evaluate::{Distances, EvalOptions, Evaluation, Protocol, check_features, evaluate};
pub use rank::{EvalError, Label, Metrics, QueryOutcome, RankedEntry, ranked_list};
