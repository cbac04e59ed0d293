//! Images for the views, decoded and resized on worker threads and kept as textures in a
//! least-recently-used cache. The UI thread only queues requests and uploads finished pixels.
//! While a run's network is set as the overlay, images are served as their activation-map
//! overlays instead, computed by the same workers and cached the same way.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Condvar, Mutex};

use eframe::egui::{self, ColorImage, TextureHandle, TextureOptions};

use crate::data::image::decode_rgb;
use crate::data::resample::resize_bilinear_rgb8;
use crate::run::network_maps::NetworkMaps;

/// Image heights the cache serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImageSize {
    /// Grid and ranked-list tiles.
    Thumbnail,
    /// The detail panel.
    Full,
}

impl ImageSize {
    /// Largest height in pixels (smaller images keep their size).
    fn max_height(self) -> usize {
        match self {
            ImageSize::Thumbnail => 128,
            ImageSize::Full => 512,
        }
    }
}

/// An image file, its size, and the [`NetworkMaps::id`] of the network whose overlay it shows.
type Key = (PathBuf, ImageSize, Option<u64>);

/// A key and the network that computes its overlay, if it is one.
type Request = (Key, Option<Arc<NetworkMaps>>);

/// What the cache holds for one image.
enum Slot {
    /// Queued or being decoded.
    Pending,
    /// Uploaded, with the frame it was last drawn in.
    Ready(TextureHandle, u64),
    /// Could not be decoded.
    Failed(String),
}

/// An image as the views see it.
pub enum Thumb<'a> {
    /// Not decoded yet.
    Loading,
    /// Ready to draw; true when it is an activation-map overlay.
    Ready(&'a TextureHandle, bool),
    /// Unreadable, with the reason.
    Failed(&'a str),
}

/// Requests waiting for a worker; the newest is taken first, so what is on screen now comes
/// before what was scrolled past.
struct Queue {
    keys: Mutex<VecDeque<Request>>,
    ready: Condvar,
    closed: AtomicBool,
}

type Decoded = (Key, Result<ColorImage, String>);

/// The texture cache and its decoding workers.
pub struct Thumbnails {
    slots: HashMap<Key, Slot>,
    queue: Arc<Queue>,
    results: Receiver<Decoded>,
    frame: u64,
    capacity: usize,
    overlay: Option<Arc<NetworkMaps>>,
}

/// Requests kept waiting at most; older ones are dropped and asked again when seen again.
const MAX_QUEUED: usize = 512;
/// Textures uploaded per frame at most, so a burst of results cannot stall a frame.
const UPLOADS_PER_FRAME: usize = 48;

impl Thumbnails {
    /// Starts `workers` decoding threads; at most `capacity` textures stay uploaded.
    pub fn new(ctx: &egui::Context, workers: usize, capacity: usize) -> Self {
        let queue = Arc::new(Queue {
            keys: Mutex::new(VecDeque::new()),
            ready: Condvar::new(),
            closed: AtomicBool::new(false),
        });
        let (sender, results) = channel();
        for index in 0..workers.max(1) {
            let (queue, sender, ctx) = (Arc::clone(&queue), sender.clone(), ctx.clone());
            std::thread::Builder::new()
                .name(format!("thumbnails-{index}"))
                .spawn(move || decode_loop(&queue, &sender, &ctx))
                .expect("cannot start a thumbnail thread");
        }
        Thumbnails {
            slots: HashMap::new(),
            queue,
            results,
            frame: 0,
            capacity: capacity.max(1),
            overlay: None,
        }
    }

    /// Serves images as activation-map overlays of `network` from now on, or plain with `None`.
    pub fn set_overlay(&mut self, network: Option<Arc<NetworkMaps>>) {
        self.overlay = network;
    }

    /// Uploads finished images and evicts the least recently drawn ones; call once per frame.
    pub fn begin_frame(&mut self, ctx: &egui::Context) {
        self.frame += 1;
        for _ in 0..UPLOADS_PER_FRAME {
            let Ok((key, decoded)) = self.results.try_recv() else {
                break;
            };
            if !matches!(self.slots.get(&key), Some(Slot::Pending)) {
                continue;
            }
            let slot = match decoded {
                Ok(image) => {
                    let name = key.0.display().to_string();
                    Slot::Ready(
                        ctx.load_texture(name, image, TextureOptions::LINEAR),
                        self.frame,
                    )
                }
                Err(reason) => Slot::Failed(reason),
            };
            self.slots.insert(key, slot);
        }
        if self.pending() > 0 {
            ctx.request_repaint();
        }
        self.evict();
    }

    fn pending(&self) -> usize {
        self.slots
            .values()
            .filter(|s| matches!(s, Slot::Pending))
            .count()
    }

    fn evict(&mut self) {
        let ready = self
            .slots
            .values()
            .filter(|s| matches!(s, Slot::Ready(..)))
            .count();
        if ready <= self.capacity {
            return;
        }
        // Evict down to 3/4 of the capacity at once so this runs rarely.
        let mut by_age: Vec<(u64, Key)> = self
            .slots
            .iter()
            .filter_map(|(k, s)| match s {
                Slot::Ready(_, used) => Some((*used, k.clone())),
                _ => None,
            })
            .collect();
        by_age.sort_unstable_by_key(|(used, _)| *used);
        let keep = self.capacity * 3 / 4;
        for (_, key) in by_age.into_iter().take(ready - keep) {
            self.slots.remove(&key);
        }
    }

    /// The image at `path` in `size` (its overlay, while one is set), queued for decoding if
    /// it is not cached.
    pub fn get(&mut self, path: &Path, size: ImageSize) -> Thumb<'_> {
        // An overlay has the network's input size, whatever size is asked.
        let (size, overlay) = match &self.overlay {
            Some(network) => (ImageSize::Thumbnail, Some(network.id())),
            None => (size, None),
        };
        let key = (path.to_path_buf(), size, overlay);
        if !self.slots.contains_key(&key) {
            self.request((key.clone(), self.overlay.clone()));
        }
        let frame = self.frame;
        match self.slots.get_mut(&key) {
            Some(Slot::Ready(texture, used)) => {
                *used = frame;
                Thumb::Ready(texture, overlay.is_some())
            }
            Some(Slot::Failed(reason)) => Thumb::Failed(reason),
            _ => Thumb::Loading,
        }
    }

    fn request(&mut self, request: Request) {
        let key = request.0.clone();
        let mut keys = self.queue.keys.lock().expect("thumbnail queue poisoned");
        keys.push_back(request);
        if keys.len() > MAX_QUEUED
            && let Some((dropped, _)) = keys.pop_front()
        {
            self.slots.remove(&dropped);
        }
        drop(keys);
        self.slots.insert(key, Slot::Pending);
        self.queue.ready.notify_one();
    }

    /// Images waiting for a worker or for upload.
    pub fn in_flight(&self) -> usize {
        self.pending()
    }
}

impl Drop for Thumbnails {
    fn drop(&mut self) {
        self.queue.closed.store(true, Ordering::Relaxed);
        self.queue.ready.notify_all();
    }
}

fn decode_loop(queue: &Queue, results: &Sender<Decoded>, ctx: &egui::Context) {
    loop {
        let (key, overlay) = {
            let mut keys = queue.keys.lock().expect("thumbnail queue poisoned");
            loop {
                if queue.closed.load(Ordering::Relaxed) {
                    return;
                }
                if let Some(request) = keys.pop_back() {
                    break request;
                }
                keys = queue.ready.wait(keys).expect("thumbnail queue poisoned");
            }
        };
        let decoded = match overlay {
            Some(network) => network.overlay(&key.0).map(|rgb| {
                let size = [rgb.width() as usize, rgb.height() as usize];
                ColorImage::from_rgb(size, rgb.as_raw())
            }),
            None => load(&key.0, key.1),
        };
        if results.send((key, decoded)).is_err() {
            return;
        }
        ctx.request_repaint();
    }
}

/// Decodes `path` and scales it down to the size's height.
fn load(path: &Path, size: ImageSize) -> Result<ColorImage, String> {
    let rgb = decode_rgb(path).map_err(|e| e.reason)?;
    let (width, height) = (rgb.width() as usize, rgb.height() as usize);
    if width == 0 || height == 0 {
        return Err("image has no pixels".into());
    }
    let max = size.max_height();
    if height <= max {
        return Ok(ColorImage::from_rgb([width, height], rgb.as_raw()));
    }
    let out_width = (width * max / height).max(1);
    let pixels = resize_bilinear_rgb8(rgb.as_raw(), width, height, out_width, max);
    Ok(ColorImage::from_rgb([out_width, max], &pixels))
}
