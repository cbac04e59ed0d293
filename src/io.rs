//! Writing result files atomically: a temporary file beside the target, renamed into place.

use std::io::Write;

use npyz::WriterBuilder;
use std::path::Path;

/// Writes `path` through `write`, so that readers see either the old file or the whole new one.
pub fn write_atomic(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    // Temporary files are private (0600); results are ordinary files.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))?;
    }
    {
        let mut buffered = std::io::BufWriter::new(tmp.as_file_mut());
        write(&mut buffered)?;
        buffered.flush()?;
    }
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Writes a row-major `[rows, cols]` f32 matrix as a C-order `.npy` file.
pub fn write_npy_f32(path: &Path, values: &[f32], cols: usize) -> std::io::Result<()> {
    let rows = values.len().checked_div(cols).unwrap_or(0);
    write_atomic(path, |w| {
        let mut writer = npyz::WriteOptions::<f32>::new()
            .default_dtype()
            .shape(&[rows as u64, cols as u64])
            .writer(w)
            .begin_nd()?;
        writer.extend(values.iter().copied())?;
        writer.finish()
    })
}
