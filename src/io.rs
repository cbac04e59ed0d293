//! Writing result files atomically: a temporary file beside the target, renamed into place.

use std::io::{Read, Write};

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

/// Opens the regular file at `path` for reading (a symlink to one is followed), refusing
/// anything else at once: a FIFO is not waited on.
pub fn open_regular_file(path: &Path) -> std::io::Result<(std::fs::File, std::fs::Metadata)> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    // Opening a FIFO for reading waits for a writer, unless non-blocking.
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::other(
            "not a regular file (a FIFO, device, socket or folder)",
        ));
    }
    Ok((file, meta))
}

/// Reads the regular file at `path` (a symlink to one is followed), refusing anything else —
/// a FIFO, device or socket is refused without waiting on it — and files over `limit` bytes.
pub fn read_regular_file(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    let (file, meta) = open_regular_file(path)?;
    read_capped(file, &meta, limit)
}

/// Reads a file opened by [`open_regular_file`], refusing one over `limit` bytes, whether
/// its size says so or it grows past it while being read.
pub fn read_capped(
    file: std::fs::File,
    meta: &std::fs::Metadata,
    limit: u64,
) -> std::io::Result<Vec<u8>> {
    if meta.len() > limit {
        return Err(std::io::Error::other(format!(
            "the file has {} bytes, more than the {limit} read for this kind of file",
            meta.len()
        )));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(std::io::Error::other(format!(
            "the file grew past {limit} bytes while being read"
        )));
    }
    Ok(bytes)
}

/// Reads the regular text file at `path` as [`read_regular_file`] does; it must be UTF-8.
pub fn read_text_file(path: &Path, limit: u64) -> std::io::Result<String> {
    String::from_utf8(read_regular_file(path, limit)?)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text"))
}

/// Writes row-major f32 values as a C-order `.npy` file of `shape`, whose first size is
/// however many rows `values` holds: `[rows, cols]` for a matrix, `[rows, h, w]` for maps.
pub fn write_npy_f32(path: &Path, values: &[f32], row_shape: &[usize]) -> std::io::Result<()> {
    let row_len: usize = row_shape.iter().product();
    let rows = values.len().checked_div(row_len).unwrap_or(0);
    let shape: Vec<u64> = std::iter::once(rows)
        .chain(row_shape.iter().copied())
        .map(|n| n as u64)
        .collect();
    write_atomic(path, |w| {
        let mut writer = npyz::WriteOptions::<f32>::new()
            .default_dtype()
            .shape(&shape)
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

/// The largest `.npy` file read (features of a million images of 2048 values).
const MAX_NPY_BYTES: u64 = 8 << 30;

/// `text` cut to its first 200 characters (a parser's message may quote a whole header).
fn shortened(text: &str) -> String {
    const KEPT: usize = 200;
    match text.char_indices().nth(KEPT) {
        Some((end, _)) => format!(
            "{}… ({} characters in all)",
            &text[..end],
            text.chars().count()
        ),
        None => text.to_string(),
    }
}

/// NumPy's own limit on a `.npy` header's length (`max_header_size`).
const MAX_NPY_HEADER: usize = 10_000;

/// Refuses a `.npy` header that no plain array has, before the header parser sees it: longer
/// than NumPy's own limit, or with nested brackets (a plain array's header is one dict with
/// one shape tuple). The parser backtracks exponentially on nested braces: a 172-byte file
/// took minutes.
fn check_npy_header(bytes: &[u8]) -> Result<(), String> {
    let Some(rest) = bytes.strip_prefix(b"\x93NUMPY") else {
        return Ok(()); // not a .npy file: the reader says so
    };
    let (length, start) = match rest {
        [1, _, a, b, ..] => (usize::from(u16::from_le_bytes([*a, *b])), 4),
        [2 | 3, _, a, b, c, d, ..] => (u32::from_le_bytes([*a, *b, *c, *d]) as usize, 6),
        _ => return Ok(()),
    };
    if length > MAX_NPY_HEADER {
        return Err(format!(
            "the header declares {length} bytes, more than NumPy's limit of {MAX_NPY_HEADER}"
        ));
    }
    let header = rest
        .get(start..start + length)
        .unwrap_or(&rest[start.min(rest.len())..]);
    let count = |c: u8| header.iter().filter(|&&b| b == c).count();
    if count(b'{') > 1 || count(b'(') > 1 || count(b'[') > 0 {
        return Err(
            "the header is not a plain array's (nested brackets); expected {'descr': …, 'fortran_order': …, 'shape': (…)}".into(),
        );
    }
    // The reader multiplies the shape's sizes unchecked.
    let text = String::from_utf8_lossy(header);
    if let Some((_, tail)) = text.split_once('(')
        && let Some((shape, _)) = tail.split_once(')')
    {
        let mut count = Some(1u64);
        for size in shape.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let Ok(size) = size.parse::<u64>() else {
                return Ok(()); // not a shape of sizes: the reader says so
            };
            count = count.and_then(|n| n.checked_mul(size));
        }
        if count.is_none() {
            return Err(format!(
                "the header's shape ({shape}) holds more values than any file can"
            ));
        }
    }
    Ok(())
}

/// A `.npy` file read into memory.
type NpyInMemory = npyz::NpyFile<std::io::Cursor<Vec<u8>>>;

/// Opens a `.npy` file: its element kind (`f4`, `i8`, … without byte order), shape and reader.
fn open_npy(path: &Path) -> Result<(String, Vec<usize>, NpyInMemory), NpyError> {
    let error = |message: String| NpyError {
        path: path.to_path_buf(),
        message,
    };
    let bytes = read_regular_file(path, MAX_NPY_BYTES).map_err(|e| error(e.to_string()))?;
    check_npy_header(&bytes).map_err(error)?;
    let npy = npyz::NpyFile::new(std::io::Cursor::new(bytes))
        .map_err(|e| error(format!("not a .npy file: {}", shortened(&e.to_string()))))?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// A `.npy` file whose header is `header` (format version 2).
    fn npy_with_header(dir: &Path, header: &str) -> PathBuf {
        let path = dir.join("bad.npy");
        let mut bytes = b"\x93NUMPY\x02\x00".to_vec();
        bytes.extend((header.len() as u32).to_le_bytes());
        bytes.extend(header.as_bytes());
        std::fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn a_long_bad_npy_header_is_not_echoed_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = npy_with_header(dir.path(), &"x".repeat(9000));
        let error = read_npy_matrix(&path).unwrap_err().to_string();
        assert!(error.contains("bad.npy: not a .npy file"), "{error}");
        assert!(error.len() < 600, "{} characters", error.len());
    }

    /// Headers no plain array has are refused before the header parser, which backtracks
    /// exponentially on nested braces (a 172-byte file found by the fuzzer took minutes).
    #[test]
    fn nested_or_oversized_npy_headers_are_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let nested = format!("{}'descr': '<f4', 'shape': (2, 2)}}", "{".repeat(60));
        let error = read_npy_matrix(&npy_with_header(dir.path(), &nested))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("not a plain array's (nested brackets)"),
            "{error}"
        );
        let error = read_npy_ids(&npy_with_header(dir.path(), &"(".repeat(1 << 20)))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("declares 1048576 bytes, more than NumPy's limit of 10000"),
            "{error}"
        );
        let huge = "{'descr': '<i2', 'fortran_order': False, 'shape': (9000013411031718690, 3), }";
        let error = read_npy_ids(&npy_with_header(dir.path(), huge))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("holds more values than any file can"),
            "{error}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn only_regular_files_within_the_limit_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.txt");
        std::fs::write(&path, b"12345").unwrap();
        assert_eq!(read_regular_file(&path, 5).unwrap(), b"12345");
        let error = read_regular_file(&path, 4).unwrap_err().to_string();
        assert!(error.contains("5 bytes, more than the 4"), "{error}");
        let error = read_regular_file(Path::new("/dev/zero"), 4)
            .unwrap_err()
            .to_string();
        assert!(error.contains("not a regular file"), "{error}");
        assert!(read_regular_file(dir.path(), 4).is_err());
    }
}
