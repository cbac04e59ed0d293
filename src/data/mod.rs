//! Input data: ReID dataset layouts, image files and their preprocessing.

pub mod decode_budget;
mod folder;
pub mod image;
pub mod jpeg;
mod layout;
mod listed_path;
mod market_style;
mod msmt17;
pub mod resample;

use std::path::{Path, PathBuf};

pub use layout::{DatasetKind, load_dataset};
pub use listed_path::set_allow_outside_root;

/// File extensions read as images (compared case-insensitively).
const IMAGE_EXTENSIONS: [&str; 3] = ["jpg", "jpeg", "png"];

/// One image of a dataset with its identity and 0-based camera.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// Image file.
    pub path: PathBuf,
    /// Person id; 0 marks distractors (Market-1501 convention).
    pub pid: i64,
    /// Camera index, 0-based.
    pub camid: i64,
}

/// The splits of a dataset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Split {
    /// Probe images.
    pub query: Vec<Sample>,
    /// Images searched for each query.
    pub gallery: Vec<Sample>,
    /// Training images (may be empty).
    pub train: Vec<Sample>,
}

/// A parsed dataset.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// The layout it was read as.
    pub kind: DatasetKind,
    /// The folder (or CSV file) the splits were read from.
    pub root: PathBuf,
    /// Query, gallery and train samples, each split sorted by path.
    pub split: Split,
    /// Image files whose names do not follow the layout's pattern; left out of every split.
    pub unparsed: Vec<PathBuf>,
}

/// Errors raised while reading a dataset layout.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A file or folder could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The folder does not have the expected layout.
    #[error("{}: not a {kind} dataset layout; expected {expected}", root.display())]
    Layout {
        /// The root given.
        root: PathBuf,
        /// Layout name.
        kind: &'static str,
        /// What was looked for.
        expected: String,
    },
    /// A line of a list or CSV file does not parse.
    #[error("{}, line {line}: {message}", path.display())]
    Line {
        /// The list file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What was wrong and what was expected.
        message: String,
    },
    /// A split ended up without any sample.
    #[error("{}: the {split} split has no image ({unparsed} file names did not match {pattern})", root.display())]
    EmptySplit {
        /// The dataset folder.
        root: PathBuf,
        /// Which split.
        split: &'static str,
        /// Image files skipped because their names did not parse.
        unparsed: usize,
        /// The naming pattern expected.
        pattern: &'static str,
    },
}

impl DataError {
    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DataError + '_ {
        move |source| DataError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// The largest dataset description read (a CSV or list file of a few million rows).
const MAX_LIST_BYTES: u64 = 1 << 30;

/// True for `.jpg/.jpeg/.png` file names (case-insensitive).
fn is_image_name(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| e.eq_ignore_ascii_case(x)))
}

/// Every `.jpg/.jpeg/.png` entry directly inside `dir` but folders (links and special files
/// included, so that reading them reports why they are left out), sorted by file name.
pub fn list_images(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        // Anything but a folder: symlinks are followed, and special files are refused with a
        // reason when read, so every file left out is reported.
        if is_image_name(&path) && !entry.file_type()?.is_dir() {
            files.push(path);
        }
    }
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    Ok(files)
}
