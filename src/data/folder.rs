//! Custom datasets: a CSV file `path,pid,camid,split` (paths relative to the CSV's folder, and
//! inside it unless `--allow-outside-root`; split `query`, `gallery` or `train`; camid
//! 0-based; optional header line); junk rows (pid −1) are dropped.

use std::path::Path;

use crate::io::read_text_file;

use super::listed_path::resolve_listed;
use super::{DataError, Sample, Split};

/// Reads a CSV dataset description.
pub(super) fn read_csv(csv: &Path) -> Result<Split, DataError> {
    let text = read_text_file(csv, super::MAX_LIST_BYTES).map_err(DataError::io(csv))?;
    let base = csv.parent().unwrap_or(Path::new("."));
    let mut split = Split::default();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || (index == 0 && line.starts_with("path,")) {
            continue;
        }
        let bad = |message: String| DataError::Line {
            path: csv.to_path_buf(),
            line: index + 1,
            message,
        };
        // Split from the right so that paths may contain commas.
        let fields: Vec<&str> = line.rsplitn(4, ',').collect();
        let [split_name, camid, pid, path] = fields[..] else {
            return Err(bad(format!(
                "expected `path,pid,camid,split` (4 fields), got `{line}`"
            )));
        };
        let int = |what: &str, value: &str| {
            value
                .trim()
                .parse::<i64>()
                .map_err(|_| bad(format!("{what} `{value}` is not an integer")))
        };
        let sample = Sample {
            path: resolve_listed(base, path.trim()).map_err(bad)?,
            pid: int("pid", pid)?,
            camid: int("camid", camid)?,
        };
        // Junk boxes (pid −1) are dropped, as in the other layouts.
        if sample.pid == -1 {
            continue;
        }
        match split_name.trim() {
            "query" => split.query.push(sample),
            "gallery" => split.gallery.push(sample),
            "train" => split.train.push(sample),
            other => {
                return Err(bad(format!(
                    "split `{other}`: expected query, gallery or train"
                )));
            }
        }
    }
    Ok(split)
}
