//! Training view: start a training run on the top bar's dataset (model, initial weights,
//! epochs, learning rate, precision, evaluation interval, input size, output folder), follow
//! its curves (loss, accuracy, rank-1 / mAP, learning rate) and progress live, cancel it; or
//! open a finished run's folder and see its `history.csv` drawn the same way.

use std::path::PathBuf;

use eframe::egui::{self, ColorImage, RichText, TextureHandle, TextureOptions, Ui, Vec2};

use crate::backend::DeviceChoice;
use crate::data::DatasetKind;
use crate::data::image::Preprocess;
use crate::models::ModelName;
use crate::report::chart::render_rgb;
use crate::train::TrainSettings;
use crate::train::curves::Curves;
use crate::train::history::EpochRecord;
use crate::train::step::TrainPrecision;

use super::action::Action;
use super::choice::choice;
use super::theme::{ERROR, PROGRESS};
use super::training::{TrainProgress, Training};

/// Training view state: the form and the drawn curves.
pub struct TrainView {
    model: ModelName,
    weights: String,
    out: String,
    epochs: usize,
    lr: f64,
    precision: TrainPrecision,
    eval_every: usize,
    height: u32,
    width: u32,
    batch_size: usize,
    instances: usize,
    device: DeviceChoice,
    /// A finished run's folder and its history, when one was opened.
    pub opened: Option<(PathBuf, Vec<EpochRecord>)>,
    curves: Option<(Vec<EpochRecord>, TextureHandle)>,
}

impl Default for TrainView {
    fn default() -> Self {
        let recipe = TrainSettings::recipe(
            (DatasetKind::Auto, PathBuf::new()),
            ModelName::Mobilenetv2X1_0,
            None,
            PathBuf::from("runs/app"),
        );
        TrainView {
            model: recipe.model,
            weights: String::new(),
            out: recipe.out.display().to_string(),
            epochs: recipe.schedule.epochs,
            lr: recipe.schedule.lr,
            precision: recipe.precision,
            eval_every: recipe.eval_every,
            height: recipe.size.height,
            width: recipe.size.width,
            batch_size: recipe.batch_size,
            instances: recipe.instances,
            device: recipe.device,
            opened: None,
            curves: None,
        }
    }
}

impl TrainView {
    /// Draws the view; `dataset` is the top bar's, which a new run trains on.
    pub fn show(
        &mut self,
        ui: &mut Ui,
        training: Option<&Training>,
        dataset: (DatasetKind, PathBuf),
    ) -> Option<Action> {
        let mut action = None;
        let progress = training.map(Training::snapshot);
        let running = progress.as_ref().is_some_and(|p| p.finished.is_none());
        ui.horizontal(|ui| {
            ui.heading("Train");
            ui.label(
                RichText::new(format!(
                    "Torchreid's softmax + triplet recipe on the train split of {}",
                    dataset.1.display()
                ))
                .weak(),
            );
        });
        ui.add_enabled_ui(!running, |ui| {
            if let Some(a) = self.form(ui, dataset) {
                action = Some(a);
            }
        });
        ui.separator();
        let history = match (&progress, &self.opened) {
            (Some(progress), _) => {
                if let Some(a) = status(ui, progress, training) {
                    action = Some(a);
                }
                progress.history.clone()
            }
            (None, Some((folder, history))) => {
                ui.label(format!("{}: {} epochs", folder.display(), history.len()));
                history.clone()
            }
            (None, None) => {
                ui.label("Start a run, or open a finished run's folder to see its curves.");
                return action;
            }
        };
        self.draw_curves(ui, history);
        action
    }

    fn form(&mut self, ui: &mut Ui, dataset: (DatasetKind, PathBuf)) -> Option<Action> {
        let mut action = None;
        egui::Grid::new("train form").num_columns(4).show(ui, |ui| {
            ui.label("model");
            let models = ModelName::ALL.map(|m| (m, m.to_string()));
            choice(ui, "", &mut self.model, models, 180.0);
            ui.label("initial weights");
            ui.horizontal(|ui| {
                ui.add(egui::TextEdit::singleline(&mut self.weights).desired_width(260.0))
                    .on_hover_text("A checkpoint reidscope loads; empty: random weights");
                if ui.button("Choose…").clicked()
                    && let Some(file) = rfd::FileDialog::new().pick_file()
                {
                    self.weights = file.display().to_string();
                }
            });
            ui.end_row();
            ui.label("epochs");
            ui.add(egui::DragValue::new(&mut self.epochs).range(1..=1000));
            ui.label("learning rate");
            ui.add(egui::DragValue::new(&mut self.lr).range(1e-7..=1.0).speed(1e-5));
            ui.end_row();
            ui.label("evaluate every");
            ui.add(egui::DragValue::new(&mut self.eval_every).range(0..=1000))
                .on_hover_text("Epochs between evaluations (0: never); each evaluated epoch joins the Run list");
            ui.label("precision");
            let precisions = TrainPrecision::ALL.map(|p| (p, p.to_string()));
            choice(ui, "", &mut self.precision, precisions, 100.0);
            ui.end_row();
            ui.label("input height × width");
            ui.horizontal(|ui| {
                ui.add(egui::DragValue::new(&mut self.height).range(16..=1024));
                ui.add(egui::DragValue::new(&mut self.width).range(16..=1024));
            });
            ui.label("batch (identities × images)");
            ui.horizontal(|ui| {
                ui.add(egui::DragValue::new(&mut self.batch_size).range(2..=512));
                ui.add(egui::DragValue::new(&mut self.instances).range(1..=64));
            });
            ui.end_row();
            ui.label("device");
            let devices = DeviceChoice::ALL.map(|d| (d, d.to_string()));
            choice(ui, "", &mut self.device, devices, 100.0);
            ui.label("output folder");
            ui.horizontal(|ui| {
                ui.add(egui::TextEdit::singleline(&mut self.out).desired_width(260.0));
                if ui.button("Choose…").clicked()
                    && let Some(dir) = rfd::FileDialog::new().pick_folder()
                {
                    self.out = dir.display().to_string();
                }
            });
            ui.end_row();
        });
        ui.horizontal(|ui| {
            if ui.button("Train").clicked() {
                action = Some(Action::StartTraining(Box::new(self.settings(dataset))));
            }
            if ui
                .button("Open training folder…")
                .on_hover_text("A finished run's folder: its history.csv drawn as curves")
                .clicked()
                && let Some(dir) = rfd::FileDialog::new().pick_folder()
            {
                action = Some(Action::OpenTrainingFolder(dir));
            }
        });
        action
    }

    /// The settings of the form: Torchreid's recipe with the fields it shows.
    fn settings(&self, dataset: (DatasetKind, PathBuf)) -> TrainSettings {
        let weights = (!self.weights.trim().is_empty()).then(|| PathBuf::from(self.weights.trim()));
        let mut settings =
            TrainSettings::recipe(dataset, self.model, weights, PathBuf::from(self.out.trim()));
        settings.schedule.epochs = self.epochs;
        settings.schedule.lr = self.lr;
        settings.precision = self.precision;
        settings.eval_every = self.eval_every;
        settings.size = Preprocess {
            height: self.height,
            width: self.width,
        };
        settings.batch_size = self.batch_size;
        settings.instances = self.instances;
        settings.device = self.device;
        settings
    }

    /// The curves of `history`, redrawn when it changes.
    fn draw_curves(&mut self, ui: &mut Ui, history: Vec<EpochRecord>) {
        if history.is_empty() {
            ui.label("The curves appear after the first epoch.");
            return;
        }
        if self
            .curves
            .as_ref()
            .is_none_or(|(drawn, _)| *drawn != history)
        {
            let size = [900usize, 900];
            match render_rgb(&Curves(&history), size[0] as u32, size[1] as u32) {
                Ok(rgb) => {
                    let texture = ui.ctx().load_texture(
                        "training curves",
                        ColorImage::from_rgb(size, &rgb),
                        TextureOptions::LINEAR,
                    );
                    self.curves = Some((history, texture));
                }
                Err(e) => {
                    ui.colored_label(ERROR, format!("cannot draw the curves: {e}"));
                    return;
                }
            }
        }
        if let Some((_, texture)) = &self.curves {
            let height = ui.available_height().clamp(300.0, 900.0);
            egui::ScrollArea::vertical().show(ui, |ui| {
                ui.image((texture.id(), Vec2::splat(height)));
            });
        }
    }
}

/// The running (or ended) run's state line, progress bar and cancel button.
fn status(ui: &mut Ui, progress: &TrainProgress, training: Option<&Training>) -> Option<Action> {
    let mut action = None;
    let batch_size = training.map_or(1, |t| t.settings.batch_size);
    match &progress.finished {
        Some(Ok(false)) => {
            ui.label(RichText::new(format!("finished {} epochs", progress.history.len())).strong());
        }
        Some(Ok(true)) => {
            let last = progress.history.last().map_or(0, |r| r.epoch);
            ui.label(format!(
                "cancelled: the last checkpoint is epoch {last}'s (continue with `reidscope train --resume`)"
            ));
        }
        Some(Err(reason)) => {
            ui.colored_label(ERROR, format!("training failed: {reason}"));
        }
        None => {
            ui.horizontal(|ui| {
                let text = match (progress.evaluating, progress.step) {
                    (Some(epoch), _) => format!("epoch {epoch}: evaluating"),
                    (None, Some(step)) => {
                        let left = progress
                            .time_left(batch_size)
                            .map_or(String::new(), |t| format!(" · {:.0} s left", t.as_secs_f64()));
                        format!(
                            "epoch {}/{} · step {}/{} · loss {:.4} · accuracy {:.1}% · {:.1} img/s{left}",
                            step.epoch,
                            progress.epochs,
                            step.done,
                            step.batches,
                            step.loss,
                            step.accuracy * 100.0,
                            step.images_per_s
                        )
                    }
                    (None, None) => "preparing (reading the dataset, loading the model)".into(),
                };
                ui.label(RichText::new(text).color(PROGRESS));
                if ui.button("Cancel training").clicked() {
                    action = Some(Action::CancelTraining);
                }
            });
            if let Some(step) = progress.step {
                let epochs = progress.epochs.max(1) as f32;
                let done = (step.epoch - 1) as f32 + step.done as f32 / step.batches.max(1) as f32;
                ui.add(egui::ProgressBar::new(done / epochs).show_percentage());
            }
        }
    }
    if let Some(record) = progress.history.last() {
        let evaluation = record.evaluation.map_or(String::new(), |(rank1, map)| {
            format!(" · R1 {:.1}% · mAP {:.1}%", rank1 * 100.0, map * 100.0)
        });
        ui.label(format!(
            "epoch {}: loss {:.4} · accuracy {:.1}% · lr {:.2e}{evaluation}",
            record.epoch,
            record.loss,
            record.accuracy * 100.0,
            record.lr
        ));
    }
    action
}
