//! On-disk feature cache. An entry is keyed by model, weights content, precision, input size
//! and the image list (paths and contents); it holds the features in chunks of
//! [`CHUNK_IMAGES`] images, each written atomically with a checksum, so an interrupted
//! extraction resumes at the first missing chunk and a damaged chunk is recomputed.

use std::io::Read;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use xxhash_rust::xxh3::Xxh3;

use crate::io::{open_regular_file, write_atomic};

/// Images per chunk file.
pub const CHUNK_IMAGES: usize = 1024;

const MAGIC: &[u8; 8] = b"RSFCHNK1";

/// What identifies a set of features.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheKey {
    /// Model name.
    pub model: String,
    /// 128-bit hash of the weights file's bytes (hex).
    pub weights_digest: String,
    /// Compute precision.
    pub precision: String,
    /// Build options that change the network beyond its weights (e.g. ResNet-50's last stride).
    pub build: String,
    /// Input height.
    pub height: u32,
    /// Input width.
    pub width: u32,
    /// 128-bit hash of the image paths and contents (hex).
    pub images_digest: String,
}

impl CacheKey {
    /// Builds the key; reads the whole weights file and every image.
    pub fn new(
        (model, build): (&str, &str),
        weights: &Path,
        precision: &str,
        (height, width): (u32, u32),
        images: &[PathBuf],
    ) -> std::io::Result<Self> {
        Ok(CacheKey {
            model: model.to_string(),
            weights_digest: file_digest(weights)?,
            precision: precision.to_string(),
            build: build.to_string(),
            height,
            width,
            images_digest: images_digest(images),
        })
    }

    /// Fails when the weights file no longer hashes to the key's digest (it was replaced
    /// after the key was made, e.g. while the model was being loaded from it).
    pub fn check_weights(&self, weights: &Path) -> std::io::Result<()> {
        if file_digest(weights)? == self.weights_digest {
            Ok(())
        } else {
            Err(std::io::Error::other(
                "the file changed while the model was loaded from it; run again",
            ))
        }
    }

    /// Name of the entry's folder.
    pub fn id(&self) -> String {
        let mut hasher = Xxh3::new();
        for field in [
            &self.model,
            &self.weights_digest,
            &self.precision,
            &self.build,
            &self.images_digest,
        ] {
            hasher.update(field.as_bytes());
            hasher.update(&[0]);
        }
        hasher.update(&self.height.to_le_bytes());
        hasher.update(&self.width.to_le_bytes());
        format!("{}-{:032x}", self.model, hasher.digest128())
    }
}

/// Hash of a file's bytes.
fn file_digest(path: &Path) -> std::io::Result<String> {
    Ok(format!("{:032x}", content_digest(path)?))
}

/// Hash of the bytes of the regular file at `path`, read in blocks.
fn content_digest(path: &Path) -> std::io::Result<u128> {
    let (mut file, _) = open_regular_file(path)?;
    let mut hasher = Xxh3::new();
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hasher.digest128())
}

/// Hash of image paths with their contents (an unreadable file hashes as its error), so a
/// file replaced by another — whatever its size and modification time — changes the key.
fn images_digest(images: &[PathBuf]) -> String {
    let contents: Vec<std::io::Result<u128>> =
        images.par_iter().map(|p| content_digest(p)).collect();
    let mut hasher = Xxh3::new();
    for (path, content) in images.iter().zip(contents) {
        hasher.update(path.as_os_str().as_encoded_bytes());
        match content {
            Ok(digest) => hasher.update(&digest.to_le_bytes()),
            Err(e) => hasher.update(format!("\0unreadable: {e}\0").as_bytes()),
        }
    }
    format!("{:032x}", hasher.digest128())
}

/// Features of one chunk of images.
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    /// Feature length.
    pub dim: usize,
    /// Per image: readable (has a feature row) or not.
    pub present: Vec<bool>,
    /// Row-major features of the readable images, in order.
    pub features: Vec<f32>,
    /// Per unreadable image, in order: why.
    pub errors: Vec<String>,
}

impl Chunk {
    fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(32 + self.present.len() + self.features.len() * 4);
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&(self.present.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&(self.dim as u32).to_le_bytes());
        bytes.extend(self.present.iter().map(|&p| p as u8));
        for v in &self.features {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        let errors: Vec<String> = self
            .errors
            .iter()
            .map(|e| match e.trim() {
                "" => "unreadable".to_string(),
                e => e.replace('\n', " "),
            })
            .collect();
        let errors = errors.join("\n");
        bytes.extend_from_slice(&(errors.len() as u32).to_le_bytes());
        bytes.extend_from_slice(errors.as_bytes());
        let checksum = xxhash_rust::xxh3::xxh3_64(&bytes);
        bytes.extend_from_slice(&checksum.to_le_bytes());
        bytes
    }

    /// Decodes a chunk of `images` images; `None` if the bytes are not a whole, intact chunk.
    fn decode(bytes: &[u8], images: usize) -> Option<Chunk> {
        let (body, checksum) = bytes.split_at_checked(bytes.len().checked_sub(8)?)?;
        if xxhash_rust::xxh3::xxh3_64(body).to_le_bytes() != checksum {
            return None;
        }
        let mut reader = Reader(body.strip_prefix(MAGIC)?);
        let count = reader.u32()?;
        let dim = reader.u32()?;
        if count != images {
            return None;
        }
        let present: Vec<bool> = reader.bytes(count)?.iter().map(|&b| b == 1).collect();
        let rows = present.iter().filter(|&&p| p).count();
        let features = reader
            .bytes(rows.checked_mul(dim)?.checked_mul(4)?)?
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let errors_len = reader.u32()?;
        let errors_text = std::str::from_utf8(reader.bytes(errors_len)?).ok()?;
        let errors: Vec<String> = match errors_len {
            0 => Vec::new(),
            _ => errors_text.split('\n').map(String::from).collect(),
        };
        (reader.0.is_empty() && errors.len() == count - rows).then_some(Chunk {
            dim,
            present,
            features,
            errors,
        })
    }
}

/// Reads a byte slice front to back.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, tail) = self.0.split_at_checked(n)?;
        self.0 = tail;
        Some(head)
    }

    fn u32(&mut self) -> Option<usize> {
        Some(u32::from_le_bytes(self.bytes(4)?.try_into().ok()?) as usize)
    }
}

/// The cache folder.
#[derive(Debug, Clone)]
pub struct FeatureCache {
    root: PathBuf,
}

impl FeatureCache {
    /// A cache under `root`.
    pub fn new(root: PathBuf) -> Self {
        FeatureCache { root }
    }

    /// The platform's cache folder for reidscope (e.g. `~/.cache/reidscope`).
    pub fn default_root() -> Option<PathBuf> {
        dirs::cache_dir().map(|d| d.join("reidscope"))
    }

    /// The entry for `key` (its folder is created on the first write).
    pub fn entry(&self, key: &CacheKey) -> CacheEntry {
        CacheEntry {
            dir: self.root.join("features").join(key.id()),
            chunk_images: CHUNK_IMAGES,
        }
    }
}

/// The chunks of one cached feature set.
#[derive(Debug, Clone)]
pub struct CacheEntry {
    dir: PathBuf,
    chunk_images: usize,
}

impl CacheEntry {
    /// The same entry cut into chunks of `n` images (at least 1).
    pub fn with_chunk_images(self, n: usize) -> Self {
        CacheEntry {
            chunk_images: n.max(1),
            ..self
        }
    }

    /// Images per chunk.
    pub fn chunk_images(&self) -> usize {
        self.chunk_images
    }

    fn chunk_path(&self, index: usize) -> PathBuf {
        self.dir.join(format!("chunk-{index:06}.bin"))
    }

    /// Chunk `index` holding `images` images, if cached and intact. A damaged chunk is
    /// reported, deleted and treated as missing.
    pub fn load(&self, index: usize, images: usize) -> Option<Chunk> {
        let path = self.chunk_path(index);
        let bytes = std::fs::read(&path).ok()?;
        let chunk = Chunk::decode(&bytes, images);
        if chunk.is_none() {
            tracing::warn!(
                "{}: damaged feature cache chunk, recomputing it",
                path.display()
            );
            let _ = std::fs::remove_file(&path);
        }
        chunk
    }

    /// Stores chunk `index` atomically.
    pub fn store(&self, index: usize, chunk: &Chunk) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let bytes = chunk.encode();
        write_atomic(&self.chunk_path(index), |w| w.write_all(&bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk() -> Chunk {
        Chunk {
            dim: 2,
            present: vec![true, false, true],
            features: vec![1.0, -2.0, 3.5, 0.25],
            errors: vec!["truncated\nJPEG".into()],
        }
    }

    #[test]
    fn an_empty_error_text_still_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let entry = CacheEntry {
            dir: dir.path().to_path_buf(),
            chunk_images: 3,
        };
        entry
            .store(
                0,
                &Chunk {
                    errors: vec![String::new()],
                    ..chunk()
                },
            )
            .unwrap();
        assert_eq!(
            entry.load(0, 3).unwrap().errors,
            vec!["unreadable".to_string()]
        );
    }

    #[test]
    fn chunks_round_trip_and_damage_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let entry = CacheEntry {
            dir: dir.path().join("e"),
            chunk_images: 3,
        };
        assert_eq!(entry.load(0, 3), None);
        entry.store(0, &chunk()).unwrap();
        let loaded = entry.load(0, 3).unwrap();
        assert_eq!(loaded.features, chunk().features);
        assert_eq!(loaded.errors, vec!["truncated JPEG".to_string()]);
        assert_eq!(
            entry.load(0, 4),
            None,
            "a chunk of another size is not used"
        );

        let path = entry.chunk_path(0);
        entry.store(0, &chunk()).unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[20] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(entry.load(0, 3), None, "flipped bit");
        assert!(!path.exists(), "damaged chunk removed");

        entry.store(0, &chunk()).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 5]).unwrap();
        assert_eq!(entry.load(0, 3), None, "truncated file");
    }

    #[test]
    fn key_changes_with_weights_content_precision_and_images() {
        let dir = tempfile::tempdir().unwrap();
        let weights = dir.path().join("w.pth");
        let image = dir.path().join("a.jpg");
        std::fs::write(&weights, b"one").unwrap();
        std::fs::write(&image, b"x").unwrap();
        let images = vec![image.clone()];
        let key = |precision: &str, images: &[PathBuf]| {
            CacheKey::new(("osnet_x1_0", ""), &weights, precision, (256, 128), images)
                .unwrap()
                .id()
        };
        let first = key("f32", &images);
        assert_eq!(first, key("f32", &images));
        let stride_1 = CacheKey::new(
            ("osnet_x1_0", "last_stride=Some(1)"),
            &weights,
            "f32",
            (256, 128),
            &images,
        );
        assert_ne!(
            first,
            stride_1.unwrap().id(),
            "build options are part of the key"
        );
        assert_ne!(first, key("f16", &images));
        assert_ne!(first, key("f32", &[]));
        std::fs::write(&image, b"xy").unwrap();
        assert_ne!(first, key("f32", &images), "image size changed");
        // Same size, same modification time, other content.
        let modified = std::fs::metadata(&image).unwrap().modified().unwrap();
        let before = key("f32", &images);
        std::fs::write(&image, b"yx").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&image)
            .unwrap()
            .set_modified(modified)
            .unwrap();
        assert_ne!(before, key("f32", &images), "image content changed");
        let before = key("f32", &images);
        let made = CacheKey::new(("osnet_x1_0", ""), &weights, "f32", (256, 128), &images).unwrap();
        made.check_weights(&weights).unwrap();
        std::fs::write(&weights, b"two").unwrap();
        assert_ne!(key("f32", &images), before, "weights content changed");
        let error = made.check_weights(&weights).unwrap_err().to_string();
        assert!(
            error.contains("changed while the model was loaded"),
            "{error}"
        );
    }
}
