//! Market-1501-style folders: one folder per split, identity and camera in each file name
//! (`0002_c1s1_000451_03.jpg`: pid 2, camera 1). Shared by Market-1501, DukeMTMC-reID,
//! CUHK03-NP and plain query/gallery folders.

use std::path::{Path, PathBuf};

use super::{DataError, Sample, is_image_name};

/// The naming scheme, as shown in errors.
pub(super) const NAME_PATTERN: &str =
    "{pid}_c{camera}... with camera ≥ 1, e.g. 0002_c1s1_000451_03.jpg";

/// Person id and 0-based camera from a Market-style file name; `None` if it does not match.
pub(super) fn parse_name(path: &Path) -> Option<(i64, i64)> {
    let name = path.file_name()?.to_str()?;
    let mut parts = name.split('_');
    let pid: i64 = parts.next()?.parse().ok()?;
    let camera = parts.next()?.strip_prefix('c')?;
    let digits = camera.len()
        - camera
            .trim_start_matches(|c: char| c.is_ascii_digit())
            .len();
    let camid: i64 = camera[..digits].parse().ok()?;
    (camid >= 1 && pid >= -1).then_some((pid, camid - 1))
}

/// Samples of one split folder, sorted by file name. Junk images (pid −1) are dropped as in
/// Torchreid; names that do not match are returned separately.
pub(super) fn read_split_dir(dir: &Path) -> Result<(Vec<Sample>, Vec<PathBuf>), DataError> {
    let mut samples = Vec::new();
    let mut unparsed = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(DataError::io(dir))? {
        let path = entry.map_err(DataError::io(dir))?.path();
        if !is_image_name(&path) {
            continue;
        }
        match parse_name(&path) {
            Some((-1, _)) => {}
            Some((pid, camid)) => samples.push(Sample { path, pid, camid }),
            None => unparsed.push(path),
        }
    }
    samples.sort_by(|a, b| a.path.cmp(&b.path));
    unparsed.sort();
    Ok((samples, unparsed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_each_market_style_dataset_parse() {
        let parse = |n: &str| parse_name(Path::new(n));
        assert_eq!(parse("0002_c1s1_000451_03.jpg"), Some((2, 0)));
        assert_eq!(parse("-1_c3s2_012345_01.jpg"), Some((-1, 2)));
        assert_eq!(parse("0000_c6s4_002427_02.jpg"), Some((0, 5)));
        assert_eq!(parse("0005_c2_f0046985.jpg"), Some((5, 1)));
        assert_eq!(parse("0120_c8_f0123456.jpg"), Some((120, 7)));
        assert_eq!(parse("1467_c2_1.png"), Some((1467, 1)));
        assert_eq!(parse("Thumbs_c1.jpg"), None);
        assert_eq!(parse("0002_s1_c1.jpg"), None);
        assert_eq!(parse("0002_c0s1_000451_03.jpg"), None);
        assert_eq!(parse("0002.jpg"), None);
    }
}
