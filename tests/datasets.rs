//! Dataset parsers on miniature layouts generated in temporary folders.

use std::fs;
use std::path::Path;

use reidscope::data::{DataError, DatasetKind, load_dataset};

/// Creates empty files (the parsers read names only) under `dir`.
fn touch(dir: &Path, names: &[&str]) {
    fs::create_dir_all(dir).unwrap();
    for name in names {
        let path = dir.join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, b"").unwrap();
    }
}

fn market_layout(main: &Path) {
    touch(
        &main.join("query"),
        &[
            "0002_c1s1_000451_03.jpg",
            "0007_c2s3_070952_01.jpg",
            "-1_c1s1_000001_00.jpg",
        ],
    );
    touch(
        &main.join("bounding_box_test"),
        &[
            "0002_c2s1_000301_01.jpg",
            "0007_c3s3_071002_02.jpg",
            "0000_c6s4_002427_02.jpg",
            "-1_c4s2_012345_01.jpg",
            "Thumbs.jpg",
            "notes.txt",
        ],
    );
    touch(
        &main.join("bounding_box_train"),
        &["0001_c1s1_001051_00.jpg"],
    );
}

#[test]
fn market1501_drops_junk_keeps_distractors_and_reports_bad_names() {
    let tmp = tempfile::tempdir().unwrap();
    market_layout(&tmp.path().join("Market-1501-v15.09.15"));
    for kind in [DatasetKind::Market1501, DatasetKind::Auto] {
        let data = load_dataset(kind, tmp.path()).unwrap();
        assert_eq!(data.kind, DatasetKind::Market1501);
        assert!(data.root.ends_with("Market-1501-v15.09.15"));
        let ids: Vec<(i64, i64)> = data
            .split
            .gallery
            .iter()
            .map(|s| (s.pid, s.camid))
            .collect();
        assert_eq!(
            ids,
            vec![(0, 5), (2, 1), (7, 2)],
            "sorted by name, camid 0-based"
        );
        assert_eq!(data.split.query.len(), 2);
        assert_eq!(data.split.train.len(), 1);
        assert_eq!(data.unparsed.len(), 1);
        assert!(data.unparsed[0].ends_with("Thumbs.jpg"));
    }
}

#[test]
fn dukemtmc_is_told_apart_from_market_by_its_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let main = tmp.path().join("DukeMTMC-reID");
    touch(&main.join("query"), &["0005_c2_f0046985.jpg"]);
    touch(
        &main.join("bounding_box_test"),
        &["0005_c8_f0047001.jpg", "0009_c1_f0000001.jpg"],
    );
    let data = load_dataset(DatasetKind::Auto, tmp.path()).unwrap();
    assert_eq!(data.kind, DatasetKind::DukeMtmcReid);
    assert_eq!(data.split.gallery[0].camid, 7);
    assert!(
        data.split.train.is_empty(),
        "a missing train folder is an empty split"
    );
}

fn msmt17_layout(main: &Path, train: &str, test: &str) {
    touch(
        &main.join(test),
        &[
            "0000/0000_000_01_0303morning_0015_0.jpg",
            "0000/0000_001_05_0303noon_0020_1.jpg",
        ],
    );
    touch(&main.join(train), &["0001/0001_000_15_0113noon_1000_1.jpg"]);
    fs::write(
        main.join("list_query.txt"),
        "0000/0000_000_01_0303morning_0015_0.jpg 0\n",
    )
    .unwrap();
    fs::write(
        main.join("list_gallery.txt"),
        "0000/0000_001_05_0303noon_0020_1.jpg 0\n",
    )
    .unwrap();
    fs::write(
        main.join("list_train.txt"),
        "0001/0001_000_15_0113noon_1000_1.jpg 1\n",
    )
    .unwrap();
}

#[test]
fn msmt17_v1_and_v2_layouts() {
    for (version, train, test) in [
        ("MSMT17_V1", "train", "test"),
        ("MSMT17_V2", "mask_train_v2", "mask_test_v2"),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        msmt17_layout(&tmp.path().join(version), train, test);
        let data = load_dataset(DatasetKind::Auto, tmp.path()).unwrap();
        assert_eq!(data.kind, DatasetKind::Msmt17);
        assert_eq!((data.split.query[0].pid, data.split.query[0].camid), (0, 0));
        assert_eq!(data.split.gallery[0].camid, 4);
        assert_eq!(data.split.train[0].camid, 14);
        assert!(
            data.split.gallery[0]
                .path
                .starts_with(tmp.path().join(version).join(test))
        );
        assert!(data.split.gallery[0].path.is_file());
    }
}

#[test]
fn msmt17_bad_list_line_names_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    msmt17_layout(tmp.path(), "train", "test");
    fs::write(
        tmp.path().join("list_gallery.txt"),
        "0000/0000_001_05_0303noon_0020_1.jpg 0\n0000/broken.jpg 0\n",
    )
    .unwrap();
    let err = load_dataset(DatasetKind::Msmt17, tmp.path())
        .unwrap_err()
        .to_string();
    assert!(err.contains("list_gallery.txt, line 2"), "{err}");
    assert!(err.contains("broken.jpg"), "{err}");
}

#[test]
fn cuhk03_detected_by_default_labeled_on_request() {
    let tmp = tempfile::tempdir().unwrap();
    for (boxes, gallery) in [("detected", "0001_c2_1.png"), ("labeled", "0001_c2_2.png")] {
        let main = tmp.path().join("cuhk03-np").join(boxes);
        touch(&main.join("query"), &["0001_c1_1.png"]);
        touch(&main.join("bounding_box_test"), &[gallery]);
    }
    let detected = load_dataset(DatasetKind::Auto, tmp.path()).unwrap();
    assert_eq!(detected.kind, DatasetKind::Cuhk03);
    assert!(
        detected.split.gallery[0]
            .path
            .ends_with("detected/bounding_box_test/0001_c2_1.png")
    );
    let labeled = load_dataset(DatasetKind::Cuhk03Labeled, tmp.path()).unwrap();
    assert!(
        labeled.split.gallery[0]
            .path
            .ends_with("labeled/bounding_box_test/0001_c2_2.png")
    );
}

#[test]
fn plain_query_and_gallery_folders() {
    let tmp = tempfile::tempdir().unwrap();
    touch(&tmp.path().join("query"), &["12_c1_a.jpg"]);
    touch(
        &tmp.path().join("gallery"),
        &["12_c2_b.JPG", "13_c1_c.jpeg"],
    );
    let data = load_dataset(DatasetKind::Auto, tmp.path()).unwrap();
    assert_eq!(data.kind, DatasetKind::Folder);
    assert_eq!(data.split.gallery.len(), 2);
    assert_eq!(
        (data.split.query[0].pid, data.split.query[0].camid),
        (12, 0)
    );
}

#[test]
fn csv_description_with_header_and_commas_in_paths() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = tmp.path().join("set.csv");
    fs::write(
        &csv,
        "path,pid,camid,split\nq/a,b.jpg,3,0,query\ng/c.jpg,3,1,gallery\ng/d.jpg,4,0,gallery\ng/junk.jpg,-1,1,gallery\nt/e.jpg,9,2,train\n",
    )
    .unwrap();
    let data = load_dataset(DatasetKind::Auto, &csv).unwrap();
    assert_eq!(data.kind, DatasetKind::Folder);
    assert_eq!(data.split.query[0].path, tmp.path().join("q/a,b.jpg"));
    assert_eq!(
        data.split.gallery.len(),
        2,
        "the junk row (pid -1) is dropped"
    );
    assert_eq!(data.split.train[0].camid, 2);

    fs::write(&csv, "q/a.jpg,3,0,query\ng/c.jpg,x,1,gallery\n").unwrap();
    let err = load_dataset(DatasetKind::Folder, &csv)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("set.csv, line 2: pid `x` is not an integer"),
        "{err}"
    );
    fs::write(&csv, "q/a.jpg,3,0,probe\n").unwrap();
    let err = load_dataset(DatasetKind::Folder, &csv)
        .unwrap_err()
        .to_string();
    assert!(err.contains("expected query, gallery or train"), "{err}");
}

#[test]
fn empty_split_and_unknown_layout_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let err = load_dataset(DatasetKind::Auto, tmp.path()).unwrap_err();
    assert!(matches!(err, DataError::Layout { .. }), "{err}");
    let err = load_dataset(DatasetKind::Market1501, tmp.path())
        .unwrap_err()
        .to_string();
    assert!(err.contains("query/ and bounding_box_test/"), "{err}");

    touch(&tmp.path().join("query"), &["IMG_0001.jpg", "IMG_0002.jpg"]);
    touch(
        &tmp.path().join("bounding_box_test"),
        &["0001_c1s1_000001_00.jpg"],
    );
    let err = load_dataset(DatasetKind::Market1501, tmp.path())
        .unwrap_err()
        .to_string();
    assert!(err.contains("the query split has no image"), "{err}");
    assert!(
        err.contains("2 file names did not match {pid}_c{camera}"),
        "{err}"
    );
}

#[test]
fn list_paths_outside_the_dataset_folder_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = tmp.path().join("set.csv");
    for (row, line) in [
        ("../q/a.jpg,3,0,query\n", 1),
        ("q/a.jpg,3,0,query\n/etc/passwd,3,1,gallery\n", 2),
    ] {
        fs::write(&csv, row).unwrap();
        let err = load_dataset(DatasetKind::Folder, &csv)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("set.csv, line {line}: `"))
                && err.contains("is outside the dataset folder"),
            "{err}"
        );
    }
    let msmt = tmp.path().join("msmt");
    touch(
        &msmt.join("test/0001"),
        &["0001_000_01_0303morning_0015_0.jpg"],
    );
    fs::write(
        msmt.join("list_query.txt"),
        "0001/0001_000_01_0303morning_0015_0.jpg 1\n",
    )
    .unwrap();
    fs::write(
        msmt.join("list_gallery.txt"),
        "../../x/0001_000_02_0303morning_0016_0.jpg 1\n",
    )
    .unwrap();
    let err = load_dataset(DatasetKind::Msmt17, &msmt)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("list_gallery.txt, line 1: `../../x/0001_000_02_0303morning_0016_0.jpg` is outside the dataset folder"),
        "{err}"
    );
}
