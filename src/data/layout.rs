//! Dataset kinds, where each keeps its folders, and detection of the kind from a folder.

use std::path::{Path, PathBuf};

use crate::names::named_enum;

use super::market_style::{NAME_PATTERN, read_split_dir};
use super::{DataError, Dataset, Split, folder, msmt17};

named_enum! {
    /// The dataset layouts reidscope reads.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum DatasetKind("dataset") {
        /// Market-1501 (`bounding_box_train/ bounding_box_test/ query/`).
        Market1501 = "market1501",
        /// DukeMTMC-reID (same layout, `DukeMTMC-reID/`).
        DukeMtmcReid = "dukemtmcreid",
        /// MSMT17 v1 or v2 (list files).
        Msmt17 = "msmt17",
        /// CUHK03-NP, the `detected/` boxes (Market layout).
        Cuhk03 = "cuhk03",
        /// CUHK03-NP, the `labeled/` boxes.
        Cuhk03Labeled = "cuhk03-labeled",
        /// `query/` and `gallery/` folders with Market-style names, or a CSV file.
        Folder = "folder",
        /// Detect the layout from the folder.
        Auto = "auto",
    }
}

impl DatasetKind {
    /// Folders, relative to the root given, where the kind's split folders may live.
    fn candidates(self) -> &'static [&'static str] {
        match self {
            DatasetKind::Market1501 => &[
                "",
                "Market-1501-v15.09.15",
                "market1501",
                "market1501/Market-1501-v15.09.15",
            ],
            DatasetKind::DukeMtmcReid => &[
                "",
                "DukeMTMC-reID",
                "dukemtmcreid/DukeMTMC-reID",
                "dukemtmc-reid/DukeMTMC-reID",
            ],
            DatasetKind::Msmt17 => &[
                "",
                "MSMT17_V1",
                "MSMT17_V2",
                "msmt17/MSMT17_V1",
                "msmt17/MSMT17_V2",
            ],
            DatasetKind::Cuhk03 => &["", "detected", "cuhk03-np/detected", "cuhk03/detected"],
            DatasetKind::Cuhk03Labeled => &["", "labeled", "cuhk03-np/labeled", "cuhk03/labeled"],
            DatasetKind::Folder | DatasetKind::Auto => &[""],
        }
    }

    /// What the kind's folder must contain, as shown in errors.
    fn expected(self) -> String {
        match self {
            DatasetKind::Msmt17 => "list_query.txt, list_gallery.txt and test/ (v1) or mask_test_v2/ (v2), in the root or in MSMT17_V1/ or MSMT17_V2/".into(),
            DatasetKind::Folder => "query/ and gallery/ folders, or a CSV file path,pid,camid,split".into(),
            DatasetKind::Auto => "a Market-1501, DukeMTMC-reID, MSMT17, CUHK03-NP or query/ + gallery/ layout, or a CSV file".into(),
            kind => format!(
                "query/ and bounding_box_test/ in one of: {}",
                kind.candidates()
                    .iter()
                    .map(|c| if c.is_empty() { "the root" } else { c })
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

/// Reads the dataset at `root` as `kind` (`Auto` detects it).
pub fn load_dataset(kind: DatasetKind, root: &Path) -> Result<Dataset, DataError> {
    let kind = match kind {
        DatasetKind::Auto => detect(root).ok_or_else(|| layout_error(kind, root))?,
        kind => kind,
    };
    let (data_root, split, unparsed) = match kind {
        DatasetKind::Msmt17 => {
            let (main, train, test) = find_msmt17(root).ok_or_else(|| layout_error(kind, root))?;
            let split = read_msmt17(&main, &train, &test)?;
            (main, split, Vec::new())
        }
        DatasetKind::Folder if root.is_file() => {
            (root.to_path_buf(), folder::read_csv(root)?, Vec::new())
        }
        DatasetKind::Folder => {
            let dirs = ("query", "gallery", "train");
            let (split, unparsed) = read_market_style(root, dirs)?;
            (root.to_path_buf(), split, unparsed)
        }
        kind => {
            let main = find_market_style(kind, root).ok_or_else(|| layout_error(kind, root))?;
            let dirs = ("query", "bounding_box_test", "bounding_box_train");
            let (split, unparsed) = read_market_style(&main, dirs)?;
            (main, split, unparsed)
        }
    };
    for (name, samples) in [("query", &split.query), ("gallery", &split.gallery)] {
        if samples.is_empty() {
            return Err(DataError::EmptySplit {
                root: data_root,
                split: name,
                unparsed: unparsed.len(),
                pattern: NAME_PATTERN,
            });
        }
    }
    Ok(Dataset {
        kind,
        root: data_root,
        split,
        unparsed,
    })
}

fn layout_error(kind: DatasetKind, root: &Path) -> DataError {
    DataError::Layout {
        root: root.to_path_buf(),
        kind: match kind {
            DatasetKind::Auto => "known",
            kind => kind.name(),
        },
        expected: kind.expected(),
    }
}

/// The first candidate folder of `kind` under `root` that holds all of `required`.
fn find_candidate(kind: DatasetKind, root: &Path, required: &[&str]) -> Option<PathBuf> {
    kind.candidates()
        .iter()
        .map(|c| root.join(c))
        .find(|dir| required.iter().all(|r| dir.join(r).exists()))
}

fn find_market_style(kind: DatasetKind, root: &Path) -> Option<PathBuf> {
    find_candidate(kind, root, &["query", "bounding_box_test"])
}

/// MSMT17's main folder with its `(train, test)` image folders.
fn find_msmt17(root: &Path) -> Option<(PathBuf, PathBuf, PathBuf)> {
    let main = find_candidate(
        DatasetKind::Msmt17,
        root,
        &["list_query.txt", "list_gallery.txt"],
    )?;
    let (train, test) = msmt17::image_dirs(&main)?;
    Some((main, train, test))
}

/// Detects the layout: CSV file, MSMT17, CUHK03-NP, Market-1501 / DukeMTMC-reID (told apart by
/// the folder names), then plain query/gallery folders.
fn detect(root: &Path) -> Option<DatasetKind> {
    if root.is_file() {
        return Some(DatasetKind::Folder);
    }
    if find_msmt17(root).is_some() {
        return Some(DatasetKind::Msmt17);
    }
    if ["detected", "cuhk03-np/detected", "cuhk03/detected"]
        .iter()
        .any(|d| root.join(d).join("bounding_box_test").is_dir())
    {
        return Some(DatasetKind::Cuhk03);
    }
    if find_market_style(DatasetKind::DukeMtmcReid, root)
        .is_some_and(|m| m.to_string_lossy().to_lowercase().contains("duke"))
    {
        return Some(DatasetKind::DukeMtmcReid);
    }
    if find_market_style(DatasetKind::Market1501, root).is_some() {
        return Some(DatasetKind::Market1501);
    }
    (root.join("query").is_dir() && root.join("gallery").is_dir()).then_some(DatasetKind::Folder)
}

fn read_market_style(
    main: &Path,
    (query, gallery, train): (&str, &str, &str),
) -> Result<(Split, Vec<PathBuf>), DataError> {
    let mut unparsed = Vec::new();
    let mut read = |name: &str, required: bool| -> Result<_, DataError> {
        let dir = main.join(name);
        if !required && !dir.is_dir() {
            return Ok(Vec::new());
        }
        let (samples, mut bad) = read_split_dir(&dir)?;
        unparsed.append(&mut bad);
        Ok(samples)
    };
    let split = Split {
        query: read(query, true)?,
        gallery: read(gallery, true)?,
        train: read(train, false)?,
    };
    Ok((split, unparsed))
}

fn read_msmt17(main: &Path, train_dir: &Path, test_dir: &Path) -> Result<Split, DataError> {
    let train_list = main.join("list_train.txt");
    let split = Split {
        query: msmt17::read_list(&main.join("list_query.txt"), test_dir)?,
        gallery: msmt17::read_list(&main.join("list_gallery.txt"), test_dir)?,
        train: if train_list.is_file() {
            msmt17::read_list(&train_list, train_dir)?
        } else {
            Vec::new()
        },
    };
    Ok(split)
}
