//! Evaluation: ranking quality of gallery lists per query (CMC, mAP, mINP).

pub mod rank;
