//! Evaluation: distances, re-ranking and ranking quality of gallery lists per query (CMC, mAP,
//! mINP) under the Market-1501 and CUHK03 protocols, and what a front end shows of a run
//! (ranked lists, pair distances, comparisons of two runs).

mod aqe;
pub mod compare;
pub mod cuhk03;
pub mod distance;
pub mod drift;
mod error;
mod evaluate;
pub mod inspect;
mod label;
pub(crate) mod neighbors;
mod options;
pub(crate) mod prepared;
pub mod rank;
pub mod rerank;

pub use distance::{Distances, check_features};
pub use error::EvalError;
pub use evaluate::{Evaluation, QueryOrder, evaluate};
pub use label::Label;
pub use options::{EvalOptions, Metric, Protocol, RerankParams};
pub use rank::{Metrics, QueryOutcome, RankedEntry, ranked_list};
