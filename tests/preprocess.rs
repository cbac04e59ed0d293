//! Preprocessing equals Torchreid's test transform (Pillow bilinear resize, ToTensor, Normalize).

mod common;

use common::*;
use reidscope::data::image::{Preprocess, decode_rgb};
use reidscope::data::list_images;

fn fixture_images() -> Vec<std::path::PathBuf> {
    list_images(&fixture("images")).unwrap()
}

#[test]
fn resize_matches_pillow_bilinear() {
    let (expected, shape) = read_npy::<u8>(&fixture("images_resized.npy"));
    let per_image = shape[1] * shape[2] * shape[3];
    let images = fixture_images();
    assert_eq!(images.len(), shape[0]);
    for (i, path) in images.iter().enumerate() {
        let rgb = decode_rgb(path).unwrap();
        let resized = Preprocess::default().resize(&rgb).unwrap();
        let reference = &expected[i * per_image..(i + 1) * per_image];
        let max = resized
            .iter()
            .zip(reference)
            .map(|(a, b)| a.abs_diff(*b))
            .max()
            .unwrap();
        // Decoding (libjpeg-turbo for JPEG) and resizing are bit-exact with Pillow.
        assert_eq!(
            max,
            0,
            "{}: resized pixels differ by up to {max}",
            path.display()
        );
    }
}

#[test]
fn normalised_input_matches_torchreid_transform() {
    let (expected, shape) = read_npy::<f32>(&fixture("images_input.npy"));
    let per_image = shape[1] * shape[2] * shape[3];
    for (i, path) in fixture_images().iter().enumerate() {
        let got = Preprocess::default().load(path).unwrap();
        let reference = &expected[i * per_image..(i + 1) * per_image];
        let diff = max_abs_diff(&got, reference);
        // Pixels are exact, so only float rounding of the normalisation remains.
        assert!(
            diff <= 1e-6,
            "{}: normalised input differs by {diff}",
            path.display()
        );
    }
}

#[test]
fn list_images_is_sorted_and_filters_extensions() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["b.JPG", "a.png", "c.jpeg", "notes.txt", "d.gif"] {
        std::fs::write(dir.path().join(name), b"x").unwrap();
    }
    std::fs::create_dir(dir.path().join("e.jpg")).unwrap();
    let names: Vec<String> = list_images(dir.path())
        .unwrap()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["a.png", "b.JPG", "c.jpeg"]);
}
