//! MSMT17 (v1 `train/ test/` and v2 `mask_train_v2/ mask_test_v2/` layouts): splits come from
//! `list_{query,gallery,train}.txt`, one `relative/path.jpg pid` per line; the camera is the
//! third `_`-separated field of the file name (`0000_000_01_0303morning_0015_0.jpg`: camera 1).

use std::path::{Path, PathBuf};

use crate::io::read_text_file;

use super::listed_path::resolve_listed;
use super::{DataError, Sample};

/// Reads one list file, resolving its paths against `image_dir`.
pub(super) fn read_list(list: &Path, image_dir: &Path) -> Result<Vec<Sample>, DataError> {
    let text = read_text_file(list, super::MAX_LIST_BYTES).map_err(DataError::io(list))?;
    let mut samples = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |message: String| DataError::Line {
            path: list.to_path_buf(),
            line: index + 1,
            message,
        };
        let mut fields = line.split_whitespace();
        let (Some(relative), Some(pid), None) = (fields.next(), fields.next(), fields.next())
        else {
            return Err(bad(format!(
                "expected `path pid`, e.g. `0000/0000_000_01_0303morning_0015_0.jpg 0`, got `{line}`"
            )));
        };
        let pid: i64 = pid
            .parse()
            .map_err(|_| bad(format!("pid `{pid}` is not an integer")))?;
        let camid = camera_of(relative).ok_or_else(|| {
            bad(format!(
                "`{relative}`: expected a file name `{{pid}}_{{index}}_{{camera}}_...` with camera ≥ 1"
            ))
        })?;
        samples.push(Sample {
            path: resolve_listed(image_dir, relative).map_err(bad)?,
            pid,
            camid,
        });
    }
    samples.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(samples)
}

/// 0-based camera of an MSMT17 file name.
fn camera_of(relative: &str) -> Option<i64> {
    let name = Path::new(relative).file_name()?.to_str()?;
    let camera: i64 = name.split('_').nth(2)?.parse().ok()?;
    (camera >= 1).then_some(camera - 1)
}

/// The image folders of an MSMT17 main folder: `(train, test)`.
pub(super) fn image_dirs(main: &Path) -> Option<(PathBuf, PathBuf)> {
    [("train", "test"), ("mask_train_v2", "mask_test_v2")]
        .into_iter()
        .map(|(train, test)| (main.join(train), main.join(test)))
        .find(|(_, test)| test.is_dir())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn camera_is_the_third_field() {
        assert_eq!(
            camera_of("0000/0000_000_01_0303morning_0015_0.jpg"),
            Some(0)
        );
        assert_eq!(camera_of("3059/3059_013_15_0113noon_1000_1.jpg"), Some(14));
        assert_eq!(camera_of("0000/0000_000.jpg"), None);
        assert_eq!(camera_of("0000/0000_000_00_x.jpg"), None);
    }
}
