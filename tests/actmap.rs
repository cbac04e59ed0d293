//! `reidscope actmap` against Torchreid's `visualize_actmap.py` arithmetic on the fixtures of
//! `scripts/make_actmap_fixtures.py`: the scaled maps, the figure, the JET colours; bad input.

mod common;

use std::path::Path;
use std::process::Output;

use reidscope::report::palette::jet;

use common::{fixture, max_abs_diff, read_npy, reidscope, repo_file, run_on_folder};

/// `reidscope actmap` at 128×64, three images per batch, on the CPU.
fn actmap(model: &str, weights: &Path, images: &Path, out: &Path) -> Output {
    let size = ["--height", "128", "--width", "64", "--batch", "3"];
    run_on_folder("actmap", (model, weights), images, out, &size)
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn rgb_pixels(path: &Path) -> (Vec<u8>, (u32, u32)) {
    let image = image::open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .to_rgb8();
    let size = image.dimensions();
    (image.into_raw(), size)
}

#[test]
fn activation_maps_match_torchreids_visualize_actmap() {
    let cases = [
        (
            "osnet_ibn_x1_0",
            fixture("osnet_ibn_x1_0.pth.tar"),
            "osnet_ibn_x1_0",
        ),
        ("resnet50", fixture("resnet50.pth"), "resnet50"),
        (
            "mobilenetv2_x1_0",
            repo_file("weights/mobilenetv2_demo_reid.pth"),
            "mobilenetv2_demo_reid",
        ),
    ];
    let tmp = tempfile::tempdir().unwrap();
    for (model, weights, case) in cases {
        let out = tmp.path().join(case);
        let output = actmap(model, &weights, &fixture("images"), &out);
        assert!(output.status.success(), "{case}: {}", stderr(&output));

        let (got, shape) = read_npy::<f32>(&out.join("actmaps.npy"));
        let (expected, expected_shape) = read_npy::<f32>(&fixture(&format!("actmap/{case}.npy")));
        assert_eq!(shape, expected_shape, "{case}");
        let error = max_abs_diff(&got, &expected);
        assert!(error <= 2e-3, "{case}: maps differ by {error}");
        assert!(got.iter().all(|v| (0.0..=1.0).contains(v)), "{case}");

        let names = std::fs::read_to_string(out.join("actmaps.files.txt")).unwrap();
        let mut listed: Vec<String> = std::fs::read_dir(fixture("images"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        listed.sort();
        assert_eq!(names.lines().collect::<Vec<_>>(), listed, "{case}");

        // The figure: image | map | overlay. A map level that rounds the other way moves its
        // JET colour by up to 4 (one of 64 steps per channel) and its overlay by 3.
        let stem = listed[0].rsplit_once('.').unwrap().0;
        let (figure, size) = rgb_pixels(&out.join(format!("{stem}.png")));
        let (reference, reference_size) = rgb_pixels(&fixture(&format!("actmap/{case}_0.png")));
        assert_eq!(size, reference_size, "{case}");
        let differences: Vec<u8> = figure
            .iter()
            .zip(&reference)
            .map(|(a, b)| a.abs_diff(*b))
            .collect();
        let worst = differences.iter().copied().max().unwrap();
        let off = differences.iter().filter(|&&d| d > 1).count();
        assert!(worst <= 4, "{case}: a figure value differs by {worst}");
        assert!(
            off * 100 < differences.len(),
            "{case}: {off} of {} figure values differ by more than 1",
            differences.len()
        );
    }
}

#[test]
fn jet_is_within_one_unit_of_opencvs() {
    let (lut, shape) = read_npy::<u8>(&fixture("actmap/jet.npy"));
    assert_eq!(shape, [256, 3]);
    for (level, expected) in (0..=255u8).zip(lut.chunks_exact(3)) {
        let got = jet(level);
        for (g, e) in got.iter().zip(expected) {
            assert!(
                g.abs_diff(*e) <= 1,
                "level {level}: {got:?} vs {expected:?}"
            );
        }
    }
}

#[test]
fn unreadable_images_are_skipped_and_named() {
    let tmp = tempfile::tempdir().unwrap();
    let images = tmp.path().join("images");
    std::fs::create_dir(&images).unwrap();
    std::fs::copy(
        fixture("images/0000_c1s1_000000_00.png"),
        images.join("a.png"),
    )
    .unwrap();
    std::fs::write(images.join("b.jpg"), b"not a jpeg").unwrap();
    let out = tmp.path().join("out");
    let output = actmap("osnet_x0_25", &fixture("osnet_x0_25.pth"), &images, &out);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stderr(&output).contains("b.jpg"), "{}", stderr(&output));
    let (_, shape) = read_npy::<f32>(&out.join("actmaps.npy"));
    assert_eq!(shape, [1, 128, 64]);
    let names = std::fs::read_to_string(out.join("actmaps.files.txt")).unwrap();
    assert_eq!(names, "a.png\n");
}

#[test]
fn a_file_actmap_did_not_write_is_never_replaced() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let foreign = out.join("0000_c1s1_000000_00.png");
    std::fs::write(&foreign, b"mine").unwrap();
    let output = actmap(
        "osnet_x0_25",
        &fixture("osnet_x0_25.pth"),
        &fixture("images"),
        &out,
    );
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(message.contains("0000_c1s1_000000_00.png"), "{message}");
    assert_eq!(std::fs::read(&foreign).unwrap(), b"mine");
    assert!(!out.join("actmaps.npy").exists());

    // Its own earlier output is replaced.
    let again = tmp.path().join("again");
    for _ in 0..2 {
        let output = actmap(
            "osnet_x0_25",
            &fixture("osnet_x0_25.pth"),
            &fixture("images"),
            &again,
        );
        assert!(output.status.success(), "{}", stderr(&output));
    }
}

#[test]
fn an_input_smaller_than_the_networks_stride_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let output = reidscope(&[
        "actmap",
        "--model",
        "resnet50",
        "--weights",
        fixture("resnet50.pth").to_str().unwrap(),
        "--images",
        fixture("images").to_str().unwrap(),
        "--out",
        tmp.path().join("out").to_str().unwrap(),
        "--height",
        "16",
        "--width",
        "8",
        "--device",
        "cpu",
    ]);
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(
        message.contains("16") && message.contains("resnet50"),
        "{message}"
    );
    assert!(!message.contains("panicked"), "{message}");
}
