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

/// A `.npy` input that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", path.display())]
pub struct NpyError {
    /// The file.
    pub path: std::path::PathBuf,
    /// What was wrong and what was expected.
    pub message: String,
}

/// A `.npy` file read into memory.
type NpyInMemory = npyz::NpyFile<std::io::Cursor<Vec<u8>>>;

/// Opens a `.npy` file: its element kind (`f4`, `i8`, … without byte order), shape and reader.
fn open_npy(path: &Path) -> Result<(String, Vec<usize>, NpyInMemory), NpyError> {
    let error = |message: String| NpyError {
        path: path.to_path_buf(),
        message,
    };
    let bytes = std::fs::read(path).map_err(|e| error(e.to_string()))?;
    let npy = npyz::NpyFile::new(std::io::Cursor::new(bytes))
        .map_err(|e| error(format!("not a .npy file: {e}")))?;
    if npy.order() == npyz::Order::Fortran {
        return Err(error(
            "Fortran-ordered arrays are not supported; save in C order".into(),
        ));
    }
    let kind = match npy.dtype() {
        npyz::DType::Plain(ty) => ty
            .to_string()
            .trim_start_matches(['<', '>', '|', '='])
            .to_string(),
        other => {
            return Err(error(format!(
                "expected a plain numeric array, got dtype {other:?}"
            )));
        }
    };
    let shape = npy.shape().iter().map(|&d| d as usize).collect();
    Ok((kind, shape, npy))
}

/// Reads a 2-D float32 (or float64, narrowed) `.npy` matrix: `(row-major values, rows, cols)`.
pub fn read_npy_matrix(path: &Path) -> Result<(Vec<f32>, usize, usize), NpyError> {
    let (kind, shape, npy) = open_npy(path)?;
    let error = |message: String| NpyError {
        path: path.to_path_buf(),
        message,
    };
    let [rows, cols] = shape[..] else {
        return Err(error(format!(
            "expected a 2-D [N, D] feature matrix, got shape {shape:?}"
        )));
    };
    let values = match kind.as_str() {
        "f4" => npy.into_vec::<f32>(),
        "f8" => npy
            .into_vec::<f64>()
            .map(|v| v.into_iter().map(|x| x as f32).collect()),
        _ => {
            return Err(error(format!(
                "expected float32 or float64 features, got dtype {kind}"
            )));
        }
    }
    .map_err(|e| error(e.to_string()))?;
    Ok((values, rows, cols))
}

/// Reads a 1-D int32 or int64 `.npy` vector (person or camera ids).
pub fn read_npy_ids(path: &Path) -> Result<Vec<i64>, NpyError> {
    let (kind, shape, npy) = open_npy(path)?;
    let error = |message: String| NpyError {
        path: path.to_path_buf(),
        message,
    };
    if shape.len() != 1 {
        return Err(error(format!(
            "expected a 1-D array of ids, got shape {shape:?}"
        )));
    }
    match kind.as_str() {
        "i4" => npy
            .into_vec::<i32>()
            .map(|v| v.into_iter().map(i64::from).collect()),
        "i8" => npy.into_vec::<i64>(),
        _ => {
            return Err(error(format!(
                "expected int32 or int64 ids, got dtype {kind}"
            )));
        }
    }
    .map_err(|e| error(e.to_string()))
}
