//! Checkpoint containers: each format reidscope reads gives its values; wrong or malformed
//! checkpoints give errors naming the file, the key and the shapes.

mod common;

use common::*;
use reidscope::models::{BuildOptions, Model, ModelError, ModelName};

fn load(name: ModelName, file: &str) -> Result<Model, ModelError> {
    Model::from_checkpoint(
        name,
        &fixture(file),
        BuildOptions::default(),
        &cpu_backend(),
    )
}

#[test]
fn shape_mismatch_names_key_and_both_shapes() {
    let err = load(ModelName::OsnetX1_0, "osnet_x0_25.pth").unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, ModelError::ShapeMismatch { .. }), "{text}");
    assert!(text.contains("osnet_x0_25.pth"), "{text}");
    assert!(text.contains("'conv1.conv.weight'"), "{text}");
    assert!(
        text.contains("[16, 3, 7, 7]") && text.contains("[64, 3, 7, 7]"),
        "{text}"
    );
}

#[test]
fn missing_key_names_the_first_one() {
    let err = load(ModelName::Resnet50, "osnet_x0_25.pth").unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, ModelError::MissingKey { .. }), "{text}");
    assert!(
        text.contains("'conv1.weight'") && text.contains("[64, 3, 7, 7]"),
        "{text}"
    );
}

#[test]
fn instance_norm_model_on_batch_norm_checkpoint_is_refused() {
    let err = load(ModelName::OsnetIbnX1_0, "osnet_x1_0.pth").unwrap_err();
    assert!(err.to_string().contains("IN.weight"), "{err}");
}

#[test]
fn unexpected_key_is_reported_with_its_shape() {
    let err = load(ModelName::OsnetX0_25, "osnet_x0_25_extra_key.pth").unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, ModelError::UnexpectedKey { .. }), "{text}");
    assert!(
        text.contains("'extra.weight'") && text.contains("[4, 3]"),
        "{text}"
    );
}

#[test]
fn python_objects_among_the_weights_are_refused() {
    let err = load(ModelName::OsnetX0_25, "foreign_object.pth").unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("foreign_object.pth") && text.contains("datetime"),
        "{text}"
    );
}

#[test]
fn garbage_and_truncated_files_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.pth");
    std::fs::write(&garbage, b"this is not a checkpoint at all").unwrap();
    let truncated = dir.path().join("truncated.pth");
    let full = std::fs::read(fixture("osnet_x0_25.pth")).unwrap();
    std::fs::write(&truncated, &full[..full.len() / 2]).unwrap();
    for path in [&garbage, &truncated, &dir.path().join("absent.pth")] {
        let err = Model::from_checkpoint(
            ModelName::OsnetX0_25,
            path,
            BuildOptions::default(),
            &cpu_backend(),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains(&*path.file_name().unwrap().to_string_lossy()),
            "{err}"
        );
    }
}

#[test]
fn invalid_last_stride_is_refused() {
    let options = BuildOptions {
        last_stride: Some(3),
    };
    let err = Model::from_checkpoint(
        ModelName::Resnet50,
        &fixture("resnet50.pth"),
        options,
        &cpu_backend(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("--last-stride"), "{err}");
}

#[test]
fn non_finite_weights_and_negative_variances_are_refused_by_key() {
    let dir = tempfile::tempdir().unwrap();
    for (key, value, expected) in [
        ("conv1.conv.weight", f32::NAN, "holds NaN at index 0"),
        ("fc.0.weight", f32::INFINITY, "holds inf at index 0"),
        ("conv1.bn.running_var", -0.5, "negative variance -0.5"),
    ] {
        let path = dir.path().join(format!("{key}.pth"));
        checkpoint_with_value(
            ModelName::OsnetX0_25,
            &fixture("osnet_x0_25.pth"),
            key,
            value,
            &path,
        );
        let err = Model::from_checkpoint(
            ModelName::OsnetX0_25,
            &path,
            BuildOptions::default(),
            &cpu_backend(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains(&format!("{key}.pth"))
                && err.contains(&format!("'{key}'"))
                && err.contains(expected),
            "{err}"
        );
    }
}

/// One 512-byte TAR header: GNU format, `name`, `kind` (type flag), `stored` bytes of data
/// following it; `fill` writes further fields into the header before its checksum is set.
fn tar_header(name: &str, kind: u8, stored: u64, fill: impl FnOnce(&mut [u8; 512])) -> [u8; 512] {
    let mut header = [0u8; 512];
    header[..name.len()].copy_from_slice(name.as_bytes());
    let octal = |field: &mut [u8], value: u64| {
        let text = format!("{value:0width$o}\0", width = field.len() - 1);
        field.copy_from_slice(text.as_bytes());
    };
    octal(&mut header[100..108], 0o644);
    octal(&mut header[108..116], 0);
    octal(&mut header[116..124], 0);
    octal(&mut header[124..136], stored);
    octal(&mut header[136..148], 0);
    header[156] = kind;
    header[257..265].copy_from_slice(b"ustar  \0");
    fill(&mut header);
    header[148..156].fill(b' ');
    let sum: u64 = header.iter().map(|&b| u64::from(b)).sum();
    octal(&mut header[148..155], sum);
    header[155] = b' ';
    header
}

/// A 2 KB TAR-format checkpoint whose `storages` member is sparse: 512 stored bytes that
/// expand to 3 GiB on reading.
fn tar_member_bomb() -> Vec<u8> {
    let real_size: u64 = 3 << 30;
    let sparse = tar_header("storages", b'S', 512, |header| {
        let field = |header: &mut [u8; 512], at: usize, value: u64| {
            let text = format!("{value:011o}\0");
            header[at..at + 12].copy_from_slice(text.as_bytes());
        };
        // One data block at the very end of the file; everything before it is a hole.
        field(header, 386, real_size - 512);
        field(header, 398, 512);
        field(header, 483, real_size);
    });
    let mut tar = sparse.to_vec();
    tar.extend([0u8; 512]);
    tar.extend([0u8; 1024]);
    tar
}

/// A TAR checkpoint with a sparse member claiming 3 GiB is refused from its headers, within
/// a 1 GiB address-space limit, naming the member.
#[cfg(unix)]
#[test]
fn a_tar_checkpoint_member_larger_than_the_file_is_refused_from_its_header() {
    let dir = tempfile::tempdir().unwrap();
    let bomb = dir.path().join("bomb.pth");
    std::fs::write(&bomb, tar_member_bomb()).unwrap();
    let output = std::process::Command::new("sh")
        .args([
            "-c",
            "ulimit -v 1048576 && exec \"$0\" extract --model osnet_x0_25 --weights \"$1\" --images \"$2\" --out \"$3\" --device cpu",
            env!("CARGO_BIN_EXE_reidscope"),
        ])
        .arg(&bomb)
        .arg(fixture("images"))
        .arg(dir.path().join("feats.npy"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        err.contains("bomb.pth: TAR member 'storages' declares 3221225472 bytes, more than the whole file (2048 bytes)"),
        "{err}"
    );
}

/// The fuzz targets' seed checkpoints (scripts/make_fuzz_seeds.py): every container reidscope
/// reads — zip, legacy, Torchreid's dict with f16 tensors, the early TAR format and
/// safetensors — gives the values PyTorch saved; a plain pickle without tensors is a clear
/// error.
#[test]
fn every_checkpoint_container_of_the_fuzz_seeds_reads_its_values() {
    use reidscope::models::checkpoint::Checkpoint;
    let files = [
        "zip.pth",
        "legacy.pth",
        "torchreid.pth",
        "tar.pth",
        "model.safetensors",
    ];
    for name in files {
        let path = fixture(&format!("fuzz/checkpoint/{name}"));
        let mut checkpoint = Checkpoint::open(&path).unwrap();
        assert_eq!(
            checkpoint.read_f32("weight", &[2, 2]).unwrap(),
            [1.5, -2.0, 3.25, 0.5],
            "{name}"
        );
        assert_eq!(
            checkpoint.read_f32("bias", &[2]).unwrap(),
            [0.25, -0.75],
            "{name}"
        );
    }
    let error = Checkpoint::open(&fixture("fuzz/checkpoint/plain.pkl")).unwrap_err();
    assert!(error.to_string().contains("no tensors found"), "{error}");
}
