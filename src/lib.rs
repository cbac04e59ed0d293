//! reidscope: person re-identification feature extraction, evaluation and inspection.

pub mod app;
pub mod backend;
pub mod baseline;
pub mod cache;
pub mod data;
pub mod demo;
pub mod eval;
pub mod export;
pub mod features;
pub mod inspect;
pub mod io;
pub mod models;
pub mod names;
pub mod output_dir;
pub mod prefetch;
pub mod report;
pub mod run;
pub mod train;
