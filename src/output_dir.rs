//! Folders reidscope writes into (`eval --out`, `train --out`): real directories, never
//! symlinks, with a manifest of the files reidscope wrote there. A later run replaces or
//! removes only files the manifest lists; a file of another origin is never overwritten or
//! deleted.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::io::write_atomic;

/// The manifest's file name inside an output folder.
pub const MANIFEST: &str = ".reidscope-files";
/// The largest manifest read (a folder's worth of names; a larger one is not ours).
const MANIFEST_LIMIT: u64 = 16 << 20;

/// Why a file in an output folder is not replaced.
const NOT_OURS: &str = "exists and was not written by reidscope; it is left alone (remove it or choose another output folder)";

/// An output folder that cannot be used, or a file in it that is not reidscope's.
#[derive(Debug, thiserror::Error)]
#[error("{}: {reason}", path.display())]
pub struct OutputError {
    /// The folder or file.
    pub path: PathBuf,
    /// What is wrong.
    pub reason: String,
}

/// An output folder and the names of the files reidscope wrote in it.
#[derive(Debug)]
pub struct OutputDir {
    path: PathBuf,
    written: BTreeSet<String>,
}

impl OutputDir {
    /// Opens `path` as an output folder, creating it if missing. A symlink, or anything but a
    /// directory, is refused.
    pub fn open(path: &Path) -> Result<Self, OutputError> {
        let error = |reason: String| OutputError {
            path: path.to_path_buf(),
            reason,
        };
        match std::fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(error(
                    "is a symbolic link; reidscope writes only into real directories".into(),
                ));
            }
            Ok(meta) if !meta.is_dir() => {
                return Err(error("exists and is not a directory".into()));
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(path).map_err(|e| error(e.to_string()))?;
            }
            Err(e) => return Err(error(e.to_string())),
        }
        let written = read_manifest(&path.join(MANIFEST))?;
        Ok(Self {
            path: path.to_path_buf(),
            written,
        })
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens the folder `name` inside this one (as [`OutputDir::open`]).
    pub fn subdir(&self, name: &str) -> Result<OutputDir, OutputError> {
        OutputDir::open(&self.path.join(name))
    }

    /// The path to write the file `name` to, recorded in the manifest. Refused when a file of
    /// that name exists that reidscope did not write. Call [`OutputDir::save`] before writing.
    pub fn claim(&mut self, name: &str) -> Result<PathBuf, OutputError> {
        let path = self.path.join(name);
        if !self.written.contains(name) && std::fs::symlink_metadata(&path).is_ok() {
            return Err(OutputError {
                path,
                reason: NOT_OURS.into(),
            });
        }
        self.written.insert(name.to_string());
        Ok(path)
    }

    /// Refuses when the folder holds a file reidscope did not write whose name satisfies
    /// `wanted` (names a run will claim later).
    pub fn refuse_foreign(&self, wanted: impl Fn(&str) -> bool) -> Result<(), OutputError> {
        let entries = std::fs::read_dir(&self.path).map_err(|e| OutputError {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if wanted(&name) && !self.written.contains(&name) {
                return Err(OutputError {
                    path: entry.path(),
                    reason: NOT_OURS.into(),
                });
            }
        }
        Ok(())
    }

    /// Deletes the files reidscope wrote here earlier whose names satisfy `stale`, and drops
    /// them from the manifest (saved at once).
    pub fn remove_own(&mut self, stale: impl Fn(&str) -> bool) -> Result<(), OutputError> {
        let names: Vec<String> = self.written.iter().filter(|n| stale(n)).cloned().collect();
        for name in names {
            let path = self.path.join(&name);
            match std::fs::symlink_metadata(&path) {
                Ok(meta) if meta.is_file() => {
                    std::fs::remove_file(&path).map_err(|e| OutputError {
                        path: path.clone(),
                        reason: e.to_string(),
                    })?;
                }
                // Gone already, or replaced by something that is not a regular file.
                _ => {}
            }
            self.written.remove(&name);
        }
        self.save()
    }

    /// Writes the manifest (atomically).
    pub fn save(&self) -> Result<(), OutputError> {
        let path = self.path.join(MANIFEST);
        write_atomic(&path, |w| {
            self.written
                .iter()
                .try_for_each(|name| writeln!(w, "{name}"))
        })
        .map_err(|e| OutputError {
            path,
            reason: e.to_string(),
        })
    }
}

/// The file names a manifest lists: plain names only (a line naming another folder, such as
/// `../x` or `a/b`, is ignored). No manifest, or one that is not a regular file, lists none.
fn read_manifest(path: &Path) -> Result<BTreeSet<String>, OutputError> {
    let error = |reason: String| OutputError {
        path: path.to_path_buf(),
        reason,
    };
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_file() => {}
        _ => return Ok(BTreeSet::new()),
    }
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(MANIFEST_LIMIT + 1).read_to_string(&mut text))
        .map_err(|e| error(format!("cannot read reidscope's manifest: {e}")))?;
    if text.len() as u64 > MANIFEST_LIMIT {
        return Err(error(format!(
            "reidscope's manifest is larger than {MANIFEST_LIMIT} bytes"
        )));
    }
    Ok(text
        .lines()
        .filter(|name| is_plain_name(name))
        .map(str::to_string)
        .collect())
}

/// Whether `name` is one file name: not empty, not `.`/`..`, no separator.
fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name != MANIFEST
        && !name.contains(['/', '\\', '\0'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_files_are_replaced_and_removed_foreign_ones_never() {
        let dir = tempfile::tempdir().unwrap();
        let mut out = OutputDir::open(dir.path()).unwrap();
        let ours = out.claim("a.png").unwrap();
        out.save().unwrap();
        std::fs::write(&ours, b"1").unwrap();
        std::fs::write(dir.path().join("b.png"), b"foreign").unwrap();

        let mut again = OutputDir::open(dir.path()).unwrap();
        assert!(again.claim("a.png").is_ok(), "its own file may be replaced");
        let refused = again.claim("b.png").unwrap_err().to_string();
        assert!(refused.contains("b.png") && refused.contains("not written by reidscope"));
        again.remove_own(|name| name.ends_with(".png")).unwrap();
        assert!(!ours.exists());
        assert_eq!(std::fs::read(dir.path().join("b.png")).unwrap(), b"foreign");
    }

    #[test]
    fn a_manifest_cannot_reach_outside_its_folder() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("keep.png");
        std::fs::write(&outside, b"x").unwrap();
        let inner = dir.path().join("report");
        std::fs::create_dir(&inner).unwrap();
        std::fs::write(inner.join(MANIFEST), "../keep.png\n/etc/passwd\n..\n").unwrap();
        let mut out = OutputDir::open(&inner).unwrap();
        out.remove_own(|_| true).unwrap();
        assert!(outside.exists());
    }

    #[cfg(unix)]
    #[test]
    fn symlinked_folders_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::create_dir(&real).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let error = OutputDir::open(&link).unwrap_err().to_string();
        assert!(error.contains("symbolic link"), "{error}");
        let file = dir.path().join("file");
        std::fs::write(&file, b"").unwrap();
        assert!(OutputDir::open(&file).is_err());
    }
}
