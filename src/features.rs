//! Feature extraction: images → preprocessed batches (rayon, on a producer thread) → model →
//! one feature row per readable image. Reports progress and can be cancelled between batches.

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::cache::{CacheEntry, Chunk};
use crate::data::image::{ImageError, Preprocess, load_each};
use crate::eval::distance::row_fault;
use crate::models::{Model, ModelError};
use crate::prefetch::prefetch;

/// How far an extraction has come.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Images processed so far (including skipped ones).
    pub done: usize,
    /// Images in the whole run.
    pub total: usize,
    /// Images per second since the start.
    pub images_per_s: f64,
}

/// Features of the readable images, in input order.
#[derive(Debug, Default)]
pub struct Extraction {
    /// Row-major `[kept.len(), dim]` features.
    pub features: Vec<f32>,
    /// Feature length.
    pub dim: usize,
    /// The images that have a row, in row order.
    pub kept: Vec<PathBuf>,
    /// Images that could not be read, with the reason.
    pub skipped: Vec<ImageError>,
    /// False if the run was cancelled before the last batch.
    pub complete: bool,
}

/// Extraction settings.
#[derive(Debug, Clone, Copy)]
pub struct ExtractOptions {
    /// Images per forward pass.
    pub batch_size: usize,
    /// Input size and preprocessing.
    pub preprocess: Preprocess,
}

/// One preprocessed batch: the images that decoded and their stacked CHW values.
struct Batch {
    paths: Vec<PathBuf>,
    values: Vec<f32>,
    skipped: Vec<ImageError>,
}

fn prepare_batch(paths: &[PathBuf], preprocess: Preprocess) -> Batch {
    let (loaded, skipped) = load_each(paths, |p| preprocess.load(p));
    let mut batch = Batch {
        paths: Vec::with_capacity(loaded.len()),
        values: Vec::with_capacity(loaded.len() * preprocess.len()),
        skipped,
    };
    for (path, values) in loaded {
        batch.paths.push(path);
        batch.values.extend_from_slice(&values);
    }
    batch
}

/// Extracts features of `paths` with `model`.
///
/// Unreadable images are skipped and listed in [`Extraction::skipped`]; the rest keep their
/// order. `cancel` is checked between batches; a cancelled run returns the rows done so far.
pub fn extract(
    model: &Model,
    paths: &[PathBuf],
    options: ExtractOptions,
    on_progress: &mut dyn FnMut(Progress),
    cancel: &AtomicBool,
) -> Result<Extraction, ModelError> {
    let batch_size = options.batch_size.max(1);
    let preprocess = options.preprocess;
    let start = Instant::now();
    let mut out = Extraction {
        dim: model.name().feature_dim(),
        complete: true,
        ..Extraction::default()
    };
    // Two batches in flight: the next is decoded while the model runs the current one.
    let mut done = 0;
    let batches = paths
        .chunks(batch_size)
        .take_while(|_| !cancel.load(Ordering::Relaxed));
    let failed = prefetch(
        batches,
        |chunk| prepare_batch(chunk, preprocess),
        |batch| {
            if cancel.load(Ordering::Relaxed) {
                return ControlFlow::Break(None);
            }
            done += batch.paths.len() + batch.skipped.len();
            out.skipped.extend(batch.skipped);
            if !batch.paths.is_empty() {
                let shape = [
                    batch.paths.len(),
                    3,
                    preprocess.height as usize,
                    preprocess.width as usize,
                ];
                let rows = match model.features(batch.values, shape) {
                    Ok(rows) => rows,
                    Err(e) => return ControlFlow::Break(Some(e)),
                };
                if rows.len() != batch.paths.len() * out.dim {
                    return ControlFlow::Break(Some(ModelError::Device(format!(
                        "the model returned {} values for {} images of {} features",
                        rows.len(),
                        batch.paths.len(),
                        out.dim
                    ))));
                }
                let faulty = rows
                    .chunks_exact(out.dim)
                    .zip(&batch.paths)
                    .find_map(|(row, path)| row_fault(row).map(|fault| (path, fault)));
                if let Some((path, fault)) = faulty {
                    return ControlFlow::Break(Some(ModelError::BadFeatures {
                        image: path.clone(),
                        reason: fault.to_string(),
                    }));
                }
                out.features.extend_from_slice(&rows);
                out.kept.extend(batch.paths);
            }
            on_progress(Progress {
                done,
                total: paths.len(),
                images_per_s: done as f64 / start.elapsed().as_secs_f64().max(1e-9),
            });
            ControlFlow::Continue(())
        },
    );
    if let Some(Some(error)) = failed {
        return Err(error);
    }
    if done < paths.len() {
        out.complete = false;
    }
    Ok(out)
}

/// Like [`extract`], but reads finished chunks of images from `cache` and
/// stores each newly computed chunk there as soon as it is complete, so a cancelled or
/// interrupted run resumes where it stopped.
pub fn extract_cached(
    model: &Model,
    paths: &[PathBuf],
    options: ExtractOptions,
    cache: &CacheEntry,
    on_progress: &mut dyn FnMut(Progress),
    cancel: &AtomicBool,
) -> Result<Extraction, ModelError> {
    let start = Instant::now();
    let mut out = Extraction {
        dim: model.name().feature_dim(),
        complete: true,
        ..Extraction::default()
    };
    let mut computed = 0usize;
    let chunk_images = cache.chunk_images();
    for (index, chunk_paths) in paths.chunks(chunk_images).enumerate() {
        let offset = index * chunk_images;
        let chunk = match cache.load(index, chunk_paths.len()) {
            Some(chunk) if chunk.dim == out.dim => chunk,
            _ => {
                let part = extract(
                    model,
                    chunk_paths,
                    options,
                    &mut |p| {
                        on_progress(Progress {
                            done: offset + p.done,
                            total: paths.len(),
                            images_per_s: (computed + p.done) as f64
                                / start.elapsed().as_secs_f64().max(1e-9),
                        })
                    },
                    cancel,
                )?;
                computed += chunk_paths.len();
                if !part.complete {
                    append(&mut out, chunk_paths, to_chunk(&part, chunk_paths));
                    out.complete = false;
                    return Ok(out);
                }
                let chunk = to_chunk(&part, chunk_paths);
                if let Err(e) = cache.store(index, &chunk) {
                    tracing::warn!("cannot write the feature cache: {e}");
                }
                chunk
            }
        };
        append(&mut out, chunk_paths, chunk);
        on_progress(Progress {
            done: offset + chunk_paths.len(),
            total: paths.len(),
            images_per_s: computed as f64 / start.elapsed().as_secs_f64().max(1e-9),
        });
    }
    Ok(out)
}

/// The chunk form of an extraction over `paths` (rows of unreadable images absent).
fn to_chunk(part: &Extraction, paths: &[PathBuf]) -> Chunk {
    let mut kept = part.kept.iter().peekable();
    let present = paths
        .iter()
        .map(|p| kept.next_if(|k| *k == p).is_some())
        .collect();
    Chunk {
        dim: part.dim,
        present,
        features: part.features.clone(),
        errors: part.skipped.iter().map(|e| e.reason.clone()).collect(),
    }
}

/// Appends a chunk's rows to `out` (for a partial chunk: the rows it has).
fn append(out: &mut Extraction, paths: &[PathBuf], chunk: Chunk) {
    let mut errors = chunk.errors.into_iter();
    let mut readable = 0;
    for (path, present) in paths.iter().zip(chunk.present) {
        if present {
            out.kept.push(path.clone());
            readable += 1;
        } else if let Some(reason) = errors.next() {
            out.skipped.push(ImageError {
                path: path.clone(),
                reason,
            });
        }
    }
    out.features
        .extend_from_slice(&chunk.features[..readable * chunk.dim]);
}
