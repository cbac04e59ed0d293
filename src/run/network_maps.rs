//! A run's network kept for activation maps: loaded on first use, shared by the threads that
//! ask for maps (the app's image workers, a report's figures).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use image::RgbImage;

use super::{FeatureSource, NetworkSource, RunSpec};
use crate::backend::{Backend, DeviceChoice};
use crate::data::image::Preprocess;
use crate::inspect::actmap::{ActivationMaps, activation_maps};
use crate::models::Model;

/// The network of a run, for activation maps at the run's input size.
#[derive(Debug)]
pub struct NetworkMaps {
    id: u64,
    network: NetworkSource,
    device: DeviceChoice,
    preprocess: Preprocess,
    model: OnceLock<Result<Model, String>>,
}

impl NetworkMaps {
    /// The network of the run `spec` describes; `None` for a run without one (the colour
    /// histogram).
    pub fn of_run(spec: &RunSpec) -> Option<Self> {
        static NEXT_ID: AtomicU64 = AtomicU64::new(0);
        let FeatureSource::Network(network) = &spec.source else {
            return None;
        };
        Some(Self {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            network: network.clone(),
            device: spec.device,
            preprocess: spec.preprocess,
            model: OnceLock::new(),
        })
    }

    /// A number no other instance has: what caches of its maps are keyed by.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The network, loaded by the first call.
    fn model(&self) -> Result<&Model, String> {
        self.model
            .get_or_init(|| {
                let backend = Backend::select(self.device, self.network.precision)
                    .map_err(|e| e.to_string())?;
                self.network.load(&backend).map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Activation maps of `paths`, `batch` images per forward pass (unreadable images are
    /// skipped and listed).
    pub fn maps(&self, paths: &[PathBuf], batch: usize) -> Result<ActivationMaps, String> {
        let model = self.model()?;
        activation_maps(
            model,
            paths,
            self.preprocess,
            batch,
            &mut |_| {},
            &AtomicBool::new(false),
        )
        .map_err(|e| e.to_string())
    }

    /// The overlay of one image at the network's input size.
    pub fn overlay(&self, path: &Path) -> Result<RgbImage, String> {
        let mut result = self.maps(&[path.to_path_buf()], 1)?;
        match (result.maps.pop(), result.skipped.pop()) {
            (Some(map), _) => Ok(map.overlay()),
            (None, Some(skipped)) => Err(skipped.reason),
            (None, None) => Err("no activation map".into()),
        }
    }
}
