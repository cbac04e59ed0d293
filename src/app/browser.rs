//! Dataset browser: query / gallery / train tabs, a virtualised thumbnail grid with filters,
//! per-camera counts, and a detail panel for the clicked image.

use std::collections::{BTreeMap, BTreeSet};

use eframe::egui::{self, RichText, Ui, Vec2};

use crate::data::{Dataset, Sample};

use super::action::SplitTab;
use super::format::{camera_label, file_name};
use super::theme::{MISMATCH, QUERY};
use super::thumbnails::Thumbnails;
use super::tiles::{Tile, paint_image, show_tile, tile_size};

/// The tab's name.
fn tab_name(tab: SplitTab) -> &'static str {
    match tab {
        SplitTab::Query => "Query",
        SplitTab::Gallery => "Gallery",
        SplitTab::Train => "Train",
    }
}

/// What the filters select, and their counts.
struct Filtered {
    key: (u64, SplitTab, String, String, String),
    indices: Vec<usize>,
    identities: usize,
    per_camera: BTreeMap<i64, usize>,
}

/// Browser state.
pub struct Browser {
    /// Shown split.
    pub split: SplitTab,
    /// Identity filter (exact pid).
    pub pid: String,
    /// Camera filter (as shown, from 1).
    pub camera: String,
    /// File-name filter (substring).
    pub name: String,
    /// Tile zoom.
    pub zoom: f32,
    /// Clicked sample (index into the split).
    pub selected: Option<usize>,
    /// Scroll offset to apply on the next frame.
    pub scroll_to: Option<f32>,
    filtered: Option<Filtered>,
}

impl Default for Browser {
    fn default() -> Self {
        Browser {
            split: SplitTab::Gallery,
            pid: String::new(),
            camera: String::new(),
            name: String::new(),
            zoom: 1.0,
            selected: None,
            scroll_to: None,
            filtered: None,
        }
    }
}

impl Browser {
    /// Samples of the shown split that pass the filters (indices into the split).
    fn filter(&mut self, generation: u64, dataset: &Dataset) -> &Filtered {
        let key = (
            generation,
            self.split,
            self.pid.trim().to_string(),
            self.camera.trim().to_string(),
            self.name.trim().to_lowercase(),
        );
        if self.filtered.as_ref().is_none_or(|f| f.key != key) {
            let pid: Option<i64> = key.2.parse().ok();
            let camera: Option<i64> = key.3.parse::<i64>().ok().map(|c| c - 1);
            let samples = self.split.samples(dataset);
            let indices: Vec<usize> = (0..samples.len())
                .filter(|&i| {
                    let s = &samples[i];
                    pid.is_none_or(|p| s.pid == p)
                        && camera.is_none_or(|c| s.camid == c)
                        && (key.4.is_empty()
                            || s.path.file_name().is_some_and(|n| {
                                n.to_string_lossy().to_lowercase().contains(&key.4)
                            }))
                })
                .collect();
            let identities = indices
                .iter()
                .map(|&i| samples[i].pid)
                .collect::<BTreeSet<_>>()
                .len();
            let mut per_camera = BTreeMap::new();
            for &i in &indices {
                *per_camera.entry(samples[i].camid).or_insert(0) += 1;
            }
            self.filtered = Some(Filtered {
                key,
                indices,
                identities,
                per_camera,
            });
        }
        self.filtered.as_ref().expect("filtered just set")
    }

    /// Draws the browser for `dataset` (`generation` changes whenever the dataset does).
    pub fn show(
        &mut self,
        ui: &mut Ui,
        thumbs: &mut Thumbnails,
        generation: u64,
        dataset: &Dataset,
    ) {
        ui.horizontal(|ui| {
            for tab in [SplitTab::Query, SplitTab::Gallery, SplitTab::Train] {
                let label = format!("{} ({})", tab_name(tab), tab.samples(dataset).len());
                if ui.selectable_label(self.split == tab, label).clicked() && self.split != tab {
                    self.split = tab;
                    self.selected = None;
                }
            }
            ui.separator();
            for (label, text, width) in [
                ("pid", &mut self.pid, 50.0),
                ("camera", &mut self.camera, 30.0),
                ("file name", &mut self.name, 120.0),
            ] {
                let label = ui.label(label);
                ui.add(egui::TextEdit::singleline(text).desired_width(width))
                    .labelled_by(label.id);
            }
            ui.add(egui::Slider::new(&mut self.zoom, 0.5..=2.0).text("zoom"));
        });
        let split = self.split;
        let zoom = self.zoom;
        let filtered = self.filter(generation, dataset);
        let cameras: Vec<String> = filtered
            .per_camera
            .iter()
            .map(|(cam, n)| format!("{} {n}", camera_label(*cam)))
            .collect();
        ui.label(format!(
            "{} images · {} identities · per camera: {}",
            filtered.indices.len(),
            filtered.identities,
            cameras.join(", ")
        ));
        let indices = filtered.indices.clone();
        let samples = split.samples(dataset);
        if let Some(selected) = self.selected.filter(|&i| i < samples.len()) {
            egui::Panel::right("browser detail")
                .default_size(300.0)
                .show(ui, |ui| detail(ui, thumbs, &samples[selected]));
        }
        let cell = tile_size(zoom, 2) + ui.spacing().item_spacing;
        let per_row = ((ui.available_width() / cell.x).floor() as usize).max(1);
        let rows = indices.len().div_ceil(per_row);
        let mut area = egui::ScrollArea::vertical()
            .id_salt(("browser grid", split))
            .auto_shrink(false);
        if let Some(offset) = self.scroll_to.take() {
            area = area.vertical_scroll_offset(offset);
        }
        area.show_rows(
            ui,
            cell.y - ui.spacing().item_spacing.y,
            rows,
            |ui, range| {
                for row in range {
                    ui.horizontal(|ui| {
                        for &i in indices.iter().skip(row * per_row).take(per_row) {
                            let sample = &samples[i];
                            let caption = [
                                format!("{} {}", sample.pid, camera_label(sample.camid)),
                                file_name(&sample.path),
                            ];
                            let tile = Tile {
                                path: &sample.path,
                                frame: (self.selected == Some(i)).then_some(QUERY),
                                caption: &caption,
                                caption_color: None,
                                faded: false,
                            };
                            if show_tile(ui, thumbs, &tile, zoom).clicked() {
                                self.selected = Some(i);
                            }
                        }
                    });
                }
            },
        );
    }
}

/// The detail panel: large image, identity, camera, path.
fn detail(ui: &mut Ui, thumbs: &mut Thumbnails, sample: &Sample) {
    ui.heading(file_name(&sample.path));
    let width = ui.available_width().min(256.0);
    let (rect, _) = ui.allocate_exact_size(Vec2::new(width, width * 2.0), egui::Sense::hover());
    match paint_image(ui, thumbs, &sample.path, rect, false) {
        Err(reason) => {
            ui.colored_label(MISMATCH, format!("cannot show this image: {reason}"));
        }
        Ok(true) => {
            ui.label(RichText::new("activation map: where the run's network looks").weak());
        }
        Ok(false) => {}
    }
    egui::Grid::new("detail").num_columns(2).show(ui, |ui| {
        ui.label("pid");
        ui.label(RichText::new(sample.pid.to_string()).strong());
        ui.end_row();
        ui.label("camera");
        ui.label(format!(
            "{} (camid {})",
            camera_label(sample.camid),
            sample.camid
        ));
        ui.end_row();
    });
    let path = sample.path.display().to_string();
    ui.label(RichText::new(&path).monospace().small());
    if ui.button("Copy path").clicked() {
        ui.ctx().copy_text(path);
    }
}
