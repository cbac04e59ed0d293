//! Cached extraction: resumes after a cancel from the stored chunks, and what it returns equals
//! an uncached extraction.

mod common;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use common::*;
use reidscope::cache::{CacheKey, Chunk, FeatureCache};
use reidscope::data::image::Preprocess;
use reidscope::features::{ExtractOptions, extract, extract_cached};
use reidscope::models::{Model, ModelName};

#[test]
fn cancelled_extraction_resumes_from_stored_chunks() {
    let tmp = tempfile::tempdir().unwrap();
    let source = fixture("images");
    let mut images: Vec<PathBuf> = reidscope::data::list_images(&source).unwrap();
    std::fs::write(tmp.path().join("broken.jpg"), b"\xff\xd8 not really").unwrap();
    images.insert(1, tmp.path().join("broken.jpg"));
    let weights = tmp.path().join("w.bin");
    std::fs::write(&weights, b"random weights, seed 3").unwrap();

    let backend = cpu_backend();
    let model = Model::random(ModelName::OsnetX0_25, 3, &backend).unwrap();
    let options = ExtractOptions {
        batch_size: 2,
        preprocess: Preprocess {
            height: 64,
            width: 32,
        },
    };
    let key = CacheKey::new(("osnet_x0_25", ""), &weights, "f32", (64, 32), &images).unwrap();
    let entry = FeatureCache::new(tmp.path().join("cache"))
        .entry(&key)
        .with_chunk_images(2);
    let never = AtomicBool::new(false);
    let reference = extract(&model, &images, options, &mut |_| {}, &never).unwrap();
    assert_eq!(reference.kept.len(), 4);

    // Cancel once the first chunk is done: it is stored, the run is incomplete.
    let cancel = AtomicBool::new(false);
    let partial = extract_cached(
        &model,
        &images,
        options,
        &entry,
        &mut |p| {
            if p.done >= 2 {
                cancel.store(true, Ordering::Relaxed);
            }
        },
        &cancel,
    )
    .unwrap();
    assert!(!partial.complete);
    assert!(entry.load(0, 2).is_some() && entry.load(1, 2).is_none());

    // Mark the stored chunk so the resumed run provably reads it instead of recomputing.
    let mut stored = entry.load(0, 2).unwrap();
    let marker = vec![7.0f32; stored.features.len()];
    stored.features.clone_from(&marker);
    entry.store(0, &Chunk { ..stored }).unwrap();

    let resumed = extract_cached(&model, &images, options, &entry, &mut |_| {}, &never).unwrap();
    assert!(resumed.complete);
    assert_eq!(resumed.kept, reference.kept);
    assert_eq!(resumed.skipped.len(), 1);
    assert!(resumed.skipped[0].path.ends_with("broken.jpg"));
    let dim = resumed.dim;
    assert_eq!(
        &resumed.features[..dim],
        &marker[..],
        "row 0 came from the cache"
    );
    assert_eq!(
        &resumed.features[dim..],
        &reference.features[dim..],
        "the rest was computed"
    );
    assert!(entry.load(1, 2).is_some() && entry.load(2, 1).is_some());
}
