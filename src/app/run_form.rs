//! The top bar: dataset, model, weights, device, precision, distance; Run / Cancel with
//! progress; the list of finished runs.

use std::path::PathBuf;

use eframe::egui::{self, RichText, Ui};

use crate::backend::{DeviceChoice, Precision};
use crate::data::DatasetKind;
use crate::eval::{EvalOptions, Metric};
use crate::models::ModelName;
use crate::run::{FeatureSource, NetworkSource, RunSpec};

use super::action::Action;
use super::choice::choice;
use super::jobs::Job;
use super::theme::PROGRESS;

/// What the next run will be.
#[derive(Debug, Clone, PartialEq)]
pub struct RunForm {
    /// Dataset layout.
    pub kind: DatasetKind,
    /// Dataset folder.
    pub root: PathBuf,
    /// Colour histogram instead of a network.
    pub histogram: bool,
    /// Network.
    pub model: ModelName,
    /// Checkpoint.
    pub weights: PathBuf,
    /// The weights field while it is edited.
    weights_text: String,
    /// The dataset field while it is edited.
    root_text: String,
    /// Device.
    pub device: DeviceChoice,
    /// Precision.
    pub precision: Precision,
    /// Distance.
    pub metric: Metric,
    /// k-reciprocal re-ranking.
    pub rerank: bool,
    /// Feature cache folder.
    pub cache: Option<PathBuf>,
    /// The run the form started from: the settings it does not show come from here.
    base: RunSpec,
}

impl RunForm {
    /// The form filled in from a run specification.
    pub fn from_spec(spec: &RunSpec) -> RunForm {
        let (histogram, model, weights, precision) = match &spec.source {
            FeatureSource::Network(net) => (false, net.model, net.weights.clone(), net.precision),
            FeatureSource::ColourHistogram => (
                true,
                ModelName::Mobilenetv2X1_0,
                PathBuf::new(),
                Precision::F32,
            ),
        };
        RunForm {
            kind: spec.kind,
            root: spec.root.clone(),
            histogram,
            model,
            weights_text: weights.display().to_string(),
            root_text: spec.root.display().to_string(),
            weights,
            device: spec.device,
            precision,
            metric: spec.eval.metric,
            rerank: spec.eval.rerank.is_some(),
            cache: spec.cache.clone(),
            base: spec.clone(),
        }
    }

    /// The run the form describes.
    pub fn spec(&self) -> RunSpec {
        let last_stride = match &self.base.source {
            FeatureSource::Network(net) if net.model == self.model => net.last_stride,
            _ => None,
        };
        let source = if self.histogram {
            FeatureSource::ColourHistogram
        } else {
            FeatureSource::Network(NetworkSource {
                model: self.model,
                weights: self.weights.clone(),
                last_stride,
                precision: self.precision,
            })
        };
        RunSpec {
            kind: self.kind,
            root: self.root.clone(),
            source,
            device: self.device,
            cache: self.cache.clone(),
            eval: EvalOptions {
                metric: self.metric,
                rerank: self
                    .rerank
                    .then(|| self.base.eval.rerank.unwrap_or_default()),
                ..self.base.eval.clone()
            },
            ..self.base.clone()
        }
    }
}

/// Draws the form; returns what the user asked for.
pub fn show(ui: &mut Ui, form: &mut RunForm, job: Option<&Job>) -> Option<Action> {
    let mut action = None;
    ui.horizontal_wrapped(|ui| {
        let kinds = DatasetKind::ALL.map(|k| (k, k.name().to_string()));
        choice(ui, "dataset", &mut form.kind, kinds, 110.0);
        if let Some(root) = path_field(ui, "folder", &mut form.root_text, &form.root, 200.0) {
            action = Some(Action::OpenDataset(root));
        }
        if ui.button("Open folder…").clicked()
            && let Some(dir) = rfd::FileDialog::new().pick_folder()
        {
            action = Some(Action::OpenDataset(dir));
        }
        ui.separator();
        ui.checkbox(&mut form.histogram, "colour histogram")
            .on_hover_text("A model-free baseline: colour histograms of 4 horizontal stripes");
        ui.add_enabled_ui(!form.histogram, |ui| {
            let models = ModelName::ALL.map(|m| (m, m.to_string()));
            choice(ui, "model", &mut form.model, models, 130.0);
            if let Some(weights) =
                path_field(ui, "weights", &mut form.weights_text, &form.weights, 160.0)
            {
                form.weights = weights;
            }
            if ui
                .button("Choose…")
                .on_hover_text("choose a checkpoint")
                .clicked()
                && let Some(file) = rfd::FileDialog::new()
                    .add_filter("checkpoint", &["pth", "tar", "pt", "bin"])
                    .pick_file()
            {
                form.weights = file;
            }
            let devices = DeviceChoice::ALL.map(|d| (d, d.to_string()));
            choice(ui, "device", &mut form.device, devices, 50.0);
            let precisions = Precision::ALL.map(|p| (p, p.to_string()));
            choice(ui, "precision", &mut form.precision, precisions, 40.0);
        });
        ui.separator();
        let metrics = Metric::ALL.map(|m| (m, m.to_string()));
        choice(ui, "distance", &mut form.metric, metrics, 80.0);
        ui.checkbox(&mut form.rerank, "re-ranking")
            .on_hover_text("k-reciprocal re-ranking (k1 20, k2 6, λ 0.3)");
        ui.separator();
        match job {
            None => {
                if ui.button(RichText::new("Run").strong()).clicked() {
                    action = Some(Action::Start(form.spec()));
                }
            }
            Some(job) => {
                if ui
                    .add_enabled(!job.cancelling(), egui::Button::new("Cancel"))
                    .clicked()
                {
                    action = Some(Action::Cancel);
                }
                progress(ui, job);
            }
        }
    });
    action
}

/// A labelled path field showing `path`; the edited text is returned on Enter or when the
/// field loses focus.
fn path_field(
    ui: &mut Ui,
    label: &str,
    text: &mut String,
    path: &std::path::Path,
    width: f32,
) -> Option<PathBuf> {
    let label = ui.label(label);
    let id = ui.make_persistent_id(("path field", label.id));
    if !ui.memory(|m| m.has_focus(id)) {
        *text = path.display().to_string();
    }
    let response = ui
        .add(
            egui::TextEdit::singleline(text)
                .id(id)
                .desired_width(width)
                .font(egui::TextStyle::Monospace),
        )
        .labelled_by(label.id)
        .on_hover_text("type a path, then Enter");
    let edited = PathBuf::from(text.trim());
    (response.lost_focus() && edited != path).then_some(edited)
}

/// Progress bar with rate and time left.
fn progress(ui: &mut Ui, job: &Job) {
    let status = job.status();
    let mut text = format!("{}: {}", job.title, status.stage);
    if status.total > 0 {
        text.push_str(&format!(" {}/{}", status.done, status.total));
    }
    if let Some(rate) = status.images_per_s.filter(|r| *r > 0.0) {
        text.push_str(&format!(" · {rate:.1} img/s"));
    }
    if let Some(eta) = status.eta() {
        text.push_str(&format!(" · ETA {}", clock(eta.as_secs())));
    }
    if job.cancelling() {
        text.push_str(" · cancelling…");
    }
    let bar = match status.fraction() {
        Some(f) => egui::ProgressBar::new(f),
        None => egui::ProgressBar::new(0.0).animate(true),
    };
    ui.add(bar.desired_width(220.0));
    ui.label(RichText::new(text).color(PROGRESS));
}

/// `m:ss` or `h:mm:ss`.
fn clock(seconds: u64) -> String {
    let (h, m, s) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_round_trips_through_the_form() {
        let spec = RunSpec {
            kind: DatasetKind::Market1501,
            root: "data/market".into(),
            source: FeatureSource::Network(NetworkSource {
                model: ModelName::Resnet50,
                weights: "w.pth".into(),
                last_stride: Some(1),
                precision: Precision::F16,
            }),
            device: DeviceChoice::Gpu,
            preprocess: crate::data::image::Preprocess {
                height: 384,
                width: 128,
            },
            batch: 7,
            cache: None,
            eval: EvalOptions {
                metric: Metric::Cosine,
                normalize: true,
                rerank: Some(crate::eval::RerankParams::default()),
                ..EvalOptions::default()
            },
        };
        let mut form = RunForm::from_spec(&spec);
        assert_eq!(form.spec(), spec);
        form.rerank = false;
        form.metric = Metric::Euclidean;
        let changed = form.spec();
        assert_eq!(changed.eval.rerank, None);
        assert_eq!(changed.eval.metric, Metric::Euclidean);
        assert!(changed.eval.normalize);
        assert_eq!(changed.batch, 7);
    }

    #[test]
    fn clock_shows_minutes_and_hours() {
        assert_eq!(clock(75), "1:15");
        assert_eq!(clock(3725), "1:02:05");
    }
}
