//! Paths named in a dataset's list files (a CSV, MSMT17's lists): resolved against the
//! folder they belong to, and refused when they lead outside it (`..`, an absolute path
//! elsewhere), unless `--allow-outside-root` was given. The check is on the path as written;
//! a symbolic link inside the folder is followed, as links are everywhere else.

use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether list files may name images outside their dataset folder.
static ALLOW_OUTSIDE_ROOT: AtomicBool = AtomicBool::new(false);

/// Lets list files name images outside their dataset folder (`--allow-outside-root`).
pub fn set_allow_outside_root(allow: bool) {
    ALLOW_OUTSIDE_ROOT.store(allow, Ordering::Relaxed);
}

/// `listed` joined to `base`, or why it is refused.
pub(super) fn resolve_listed(base: &Path, listed: &str) -> Result<PathBuf, String> {
    resolve(base, listed, ALLOW_OUTSIDE_ROOT.load(Ordering::Relaxed))
}

fn resolve(base: &Path, listed: &str, allow_outside: bool) -> Result<PathBuf, String> {
    let path = base.join(listed);
    if allow_outside || leads_inside(base, Path::new(listed)) {
        return Ok(path);
    }
    Err(format!(
        "`{listed}` is outside the dataset folder {}; give --allow-outside-root to read it",
        base.display()
    ))
}

/// True if `listed`, read against `base` without touching the file system, names something
/// below `base`.
fn leads_inside(base: &Path, listed: &Path) -> bool {
    let relative = if listed.has_root() {
        let (Ok(base), Ok(listed)) = (std::path::absolute(base), std::path::absolute(listed))
        else {
            return false;
        };
        match listed.strip_prefix(&base) {
            Ok(rest) => rest.to_path_buf(),
            Err(_) => return false,
        }
    } else {
        listed.to_path_buf()
    };
    let mut depth = 0usize;
    for component in relative.components() {
        match component {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir => match depth.checked_sub(1) {
                Some(up) => depth = up,
                None => return false,
            },
            Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    depth > 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_leading_outside_the_folder_are_refused_unless_allowed() {
        let base = Path::new("/data/set");
        for inside in [
            "a.jpg",
            "query/a.jpg",
            "./q/../a.jpg",
            "q/./a.jpg",
            "/data/set/q/a.jpg",
        ] {
            assert!(resolve(base, inside, false).is_ok(), "{inside}");
        }
        for outside in [
            "../a.jpg",
            "q/../../a.jpg",
            "/etc/passwd",
            "/data/setx/a.jpg",
            "/data/set/../a.jpg",
            ".",
            "q/..",
        ] {
            let error = resolve(base, outside, false).unwrap_err();
            assert!(error.contains("--allow-outside-root"), "{outside}: {error}");
            assert_eq!(
                resolve(base, outside, true).unwrap(),
                base.join(outside),
                "{outside}"
            );
        }
        assert_eq!(
            resolve(Path::new("lists"), "0001/a.jpg", false).unwrap(),
            Path::new("lists/0001/a.jpg")
        );
    }
}
