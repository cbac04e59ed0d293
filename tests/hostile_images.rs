//! Images whose headers claim enormous sizes are refused from the header, before any pixel
//! buffer is allocated: skipped with a reason, within a small memory limit.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::*;

/// The CRC-32 of PNG chunks (ISO 3309).
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A small greyscale PNG whose header declares `side`×`side` pixels.
fn huge_png(side: u32) -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = |kind: &[u8], data: &[u8]| {
        png.extend((data.len() as u32).to_be_bytes());
        let body = [kind, data].concat();
        png.extend(&body);
        png.extend(crc32(&body).to_be_bytes());
    };
    let mut header = Vec::new();
    header.extend(side.to_be_bytes());
    header.extend(side.to_be_bytes());
    header.extend([8, 0, 0, 0, 0]); // 8-bit greyscale, deflate, no filter, no interlace
    chunk(b"IHDR", &header);
    chunk(b"IDAT", &[0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]);
    chunk(b"IEND", &[]);
    png
}

/// The fixture JPEG with its frame header changed to declare `side`×`side` pixels.
fn huge_jpeg(side: u16) -> Vec<u8> {
    let mut jpeg = std::fs::read(fixture("images/0003_c1s1_000003_00.jpg")).unwrap();
    let sof = jpeg
        .windows(2)
        .position(|w| w[0] == 0xFF && (w[1] == 0xC0 || w[1] == 0xC2))
        .expect("a frame header");
    // FF C0, length (2), precision (1), height (2), width (2).
    jpeg[sof + 5..sof + 7].copy_from_slice(&side.to_be_bytes());
    jpeg[sof + 7..sof + 9].copy_from_slice(&side.to_be_bytes());
    jpeg
}

/// `reidscope extract` of osnet_x0_25 on `images` under a 2 GiB address-space limit.
fn extract_limited(images: &Path, out: &Path, extra: &str) -> Output {
    let command = format!(
        "ulimit -v 2097152 && exec \"$0\" extract --model osnet_x0_25 --weights \"$1\" --images \"$2\" --out \"$3\" --device cpu {extra}"
    );
    Command::new("sh")
        .args(["-c", &command, env!("CARGO_BIN_EXE_reidscope")])
        .arg(fixture("osnet_x0_25.pth"))
        .arg(images)
        .arg(out)
        .output()
        .expect("run reidscope")
}

#[cfg(unix)]
#[test]
fn images_over_the_pixel_limit_are_skipped_from_their_header() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    std::fs::create_dir(&images).unwrap();
    std::fs::copy(
        fixture("images/0000_c1s1_000000_00.png"),
        images.join("0000_c1s1_000000_00.png"),
    )
    .unwrap();
    std::fs::write(images.join("0001_huge.jpg"), huge_jpeg(40000)).unwrap();
    std::fs::write(images.join("0002_huge.png"), huge_png(23000)).unwrap();
    let out = dir.path().join("feats.npy");

    let output = extract_limited(&images, &out, "");
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{err}");
    for (name, size) in [
        ("0001_huge.jpg", "40000x40000"),
        ("0002_huge.png", "23000x23000"),
    ] {
        assert!(
            err.lines().any(|line| line.contains(name)
                && line.contains(&format!(
                    "declares {size} pixels, more than the limit of 64000000"
                ))),
            "{name}: {err}"
        );
    }
    let (_, shape) = read_npy::<f32>(&out);
    assert_eq!(shape[0], 1, "only the ordinary image is kept");

    // --max-pixels lowers the limit for every image.
    let output = extract_limited(&images, &out, "--max-pixels 1000");
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        err.contains("0000_c1s1_000000_00.png: its header declares 64x128 pixels, more than the limit of 1000"),
        "{err}"
    );
    assert!(err.contains("(3 skipped)"), "{err}");
}

/// A FIFO or a link to a device named like an image is skipped with a reason at once (no
/// hang, no endless read); a link to a real image is followed.
#[cfg(unix)]
#[test]
fn special_files_are_skipped_with_a_reason_and_links_to_images_followed() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    std::fs::create_dir(&images).unwrap();
    let real = images.join("0000_c1s1_000000_00.png");
    std::fs::copy(fixture("images/0000_c1s1_000000_00.png"), &real).unwrap();
    std::os::unix::fs::symlink(&real, images.join("0001_link.png")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", images.join("0002_zero.jpg")).unwrap();
    let fifo = images.join("0003_fifo.jpg");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let out = dir.path().join("feats.npy");

    let output = extract_limited(&images, &out, "");
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{err}");
    for name in ["0002_zero.jpg", "0003_fifo.jpg"] {
        assert!(
            err.lines()
                .any(|line| line.contains(name) && line.contains("not a regular file")),
            "{name}: {err}"
        );
    }
    let (_, shape) = read_npy::<f32>(&out);
    assert_eq!(shape[0], 2, "the image and the link to it");
}

/// A JPEG whose scan data is cut short but which still ends with its end-of-image marker is
/// skipped with libjpeg's reason, not decoded into grey.
#[cfg(unix)]
#[test]
fn a_jpeg_with_missing_scan_data_is_skipped_not_grey_filled() {
    let jpeg = std::fs::read(fixture("images/0003_c1s1_000003_00.jpg")).unwrap();
    let scan = jpeg
        .windows(2)
        .rposition(|w| w == [0xFF, 0xDA])
        .expect("a start of scan");
    let kept = scan + (jpeg.len() - scan) / 3;
    let cut = [&jpeg[..kept], &[0xFF, 0xD9][..]].concat();
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    std::fs::create_dir(&images).unwrap();
    std::fs::write(images.join("0000_whole.jpg"), &jpeg).unwrap();
    std::fs::write(images.join("0001_cut.jpg"), cut).unwrap();
    let out = dir.path().join("feats.npy");

    let output = extract_limited(&images, &out, "");
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{err}");
    assert!(
        err.lines().any(|line| line.contains("0001_cut.jpg")
            && line.contains("libjpeg: Corrupt JPEG data: premature end of data segment")),
        "{err}"
    );
    let (_, shape) = read_npy::<f32>(&out);
    assert_eq!(shape[0], 1, "only the whole image is kept");
}

/// Runs `reidscope extract` of osnet_x0_25 on `images` in one batch on 16 decoding threads
/// with `--decode-memory MIB`; returns its peak resident memory in MiB.
#[cfg(unix)]
fn extract_peak_mib(images: &Path, out: &Path, decode_memory_mib: u64) -> u64 {
    // Waited for below with wait4, which also gives its resource usage.
    let pid = Command::new(env!("CARGO_BIN_EXE_reidscope"))
        .args(["extract", "--model", "osnet_x0_25", "--weights"])
        .arg(fixture("osnet_x0_25.pth"))
        .arg("--images")
        .arg(images)
        .arg("--out")
        .arg(out)
        .args(["--device", "cpu", "--batch", "16", "--decode-memory"])
        .arg(decode_memory_mib.to_string())
        .env("RAYON_NUM_THREADS", "16")
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run reidscope")
        .id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is a C struct of integers, for which all zeros is valid.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: the pointers are to live locals; the child is waited for once, here.
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "extract failed: {status}"
    );
    usage.ru_maxrss as u64 / 1024
}

/// Images decoded at once stay within `--decode-memory`, whatever the thread count: 16
/// greyscale PNGs of 16 megapixels (64 MB each once decoded and made RGB) on 16 threads.
#[cfg(unix)]
#[test]
fn decoded_images_in_flight_stay_within_the_decode_memory() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    std::fs::create_dir(&images).unwrap();
    let first = images.join("0000_c1s1_000000_00.png");
    image::GrayImage::from_fn(4000, 4000, |x, y| {
        image::Luma([((x / 7 + y * 3) % 251) as u8])
    })
    .save(&first)
    .unwrap();
    for i in 1..16 {
        std::fs::copy(&first, images.join(format!("{i:04}_c1s1_{i:06}_00.png"))).unwrap();
    }
    let out = dir.path().join("feats.npy");

    let bounded = extract_peak_mib(&images, &out, 256);
    let (_, shape) = read_npy::<f32>(&out);
    assert_eq!(shape[0], 16, "every image is kept");
    let unbounded = extract_peak_mib(&images, &out, 100_000);
    assert!(
        bounded < 400,
        "peak {bounded} MiB with --decode-memory 256 (unbounded: {unbounded} MiB)"
    );
    assert!(
        unbounded > 700,
        "16 images decoded at once take {unbounded} MiB, so the bound above is a real one"
    );
}
