//! Metrics view: CMC curves of the chosen runs on one chart, the metrics table, the
//! distance histograms of matching vs non-matching pairs, and exports.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use eframe::egui::{
    self, Align2, ColorImage, FontId, Rect, RichText, Sense, Stroke, StrokeKind, TextureHandle,
    TextureOptions, Ui, Vec2, pos2,
};

use crate::backend::Precision;
use crate::eval::inspect::histogram;
use crate::export::FORMATS;
use crate::report::MetricsFile;
use crate::report::cmc_plot::{render_cmc_rgb, write_cmc_plots};
use crate::run::FeatureSource;

use super::action::Action;
use super::dialogs::save_as;
use super::format::percent;
use super::jobs::RunEntry;
use super::theme::{MATCH, MISMATCH};

/// Bins of the distance histograms.
const BINS: usize = 40;

/// Metrics view state.
#[derive(Default)]
pub struct MetricsView {
    /// Runs drawn on the chart (by index); new runs are added when they finish.
    pub chosen: Vec<bool>,
    chart: Option<(Vec<usize>, [usize; 2], TextureHandle)>,
    /// Last export result.
    message: Option<String>,
    /// The model export's format (index into [`FORMATS`]).
    model_format: usize,
    /// Whether the model export stores float16 values.
    model_f16: bool,
}

impl MetricsView {
    /// Draws the view; `current` is the run whose histograms are shown.
    pub fn show(&mut self, ui: &mut Ui, runs: &[Arc<RunEntry>], current: usize) -> Option<Action> {
        let mut action = None;
        self.chosen.resize(runs.len(), true);
        let chosen: Vec<usize> = (0..runs.len()).filter(|&i| self.chosen[i]).collect();
        egui::ScrollArea::vertical()
            .id_salt("metrics scroll")
            .auto_shrink(false)
            .show(ui, |ui| {
                ui.heading("Runs");
                self.table(ui, runs);
                ui.horizontal(|ui| {
                    if ui.button("Export CMC as PNG + SVG…").clicked() {
                        self.export_chart(runs, &chosen);
                    }
                    if ui
                        .button("Export metrics JSON of the current run…")
                        .clicked()
                    {
                        self.export_metrics(&runs[current].run.metrics);
                    }
                    if ui
                        .button("Export report folder…")
                        .on_hover_text(
                            "metrics.json, per_query.csv, CMC figures, ranked lists and the \
                             worst queries of the current run, as `reidscope eval` writes them",
                        )
                        .clicked()
                        && let Some(dir) = rfd::FileDialog::new().pick_folder()
                    {
                        action = Some(Action::ExportReport(dir));
                    }
                    if let Some(export) = self.model_export(ui, &runs[current]) {
                        action = Some(export);
                    }
                    if let Some(message) = &self.message {
                        ui.label(message);
                    }
                });
                ui.separator();
                ui.heading("CMC");
                self.chart(ui, runs, &chosen);
                ui.separator();
                ui.heading(format!("Pair distances: {}", runs[current].name));
                distance_histograms(ui, &runs[current]);
            });
        action
    }

    fn table(&mut self, ui: &mut Ui, runs: &[Arc<RunEntry>]) {
        egui::Grid::new("metrics table")
            .striped(true)
            .num_columns(9)
            .show(ui, |ui| {
                for title in [
                    "plot", "run", "R1", "R5", "R10", "R20", "mAP", "mINP", "queries",
                ] {
                    ui.label(RichText::new(title).strong());
                }
                ui.end_row();
                for (i, entry) in runs.iter().enumerate() {
                    let m = &entry.run.metrics;
                    ui.checkbox(&mut self.chosen[i], "");
                    ui.label(&entry.name);
                    for rank in [1, 5, 10, 20] {
                        ui.label(percent(m.rank(rank)));
                    }
                    ui.label(percent(m.map));
                    ui.label(percent(m.minp));
                    ui.label(format!("{}/{}", m.num_valid_queries, m.num_queries));
                    ui.end_row();
                }
            });
    }

    fn chart(&mut self, ui: &mut Ui, runs: &[Arc<RunEntry>], chosen: &[usize]) {
        if chosen.is_empty() {
            ui.label("Tick a run in the table to plot its CMC curve.");
            return;
        }
        let width = ui.available_width().clamp(320.0, 1100.0);
        let size = [width as usize, (width * 0.5).clamp(260.0, 480.0) as usize];
        let stale = self
            .chart
            .as_ref()
            .is_none_or(|(c, s, _)| c != chosen || *s != size);
        if stale {
            let files: Vec<MetricsFile> = chosen
                .iter()
                .map(|&i| runs[i].run.metrics.clone())
                .collect();
            match render_cmc_rgb(&files, size[0] as u32, size[1] as u32) {
                Ok(rgb) => {
                    let texture = ui.ctx().load_texture(
                        "cmc chart",
                        ColorImage::from_rgb(size, &rgb),
                        TextureOptions::LINEAR,
                    );
                    self.chart = Some((chosen.to_vec(), size, texture));
                }
                Err(e) => {
                    ui.colored_label(MISMATCH, format!("cannot draw the chart: {e}"));
                    return;
                }
            }
        }
        if let Some((_, size, texture)) = &self.chart {
            ui.image((texture.id(), Vec2::new(size[0] as f32, size[1] as f32)));
        }
    }

    fn export_chart(&mut self, runs: &[Arc<RunEntry>], chosen: &[usize]) {
        let Some(png) = save_as("cmc.png", "PNG", "png") else {
            return;
        };
        let svg = png.with_extension("svg");
        let files: Vec<MetricsFile> = chosen
            .iter()
            .map(|&i| runs[i].run.metrics.clone())
            .collect();
        self.message = Some(match write_cmc_plots(&png, &svg, &files) {
            Ok(()) => format!("wrote {} and {}", png.display(), svg.display()),
            Err(e) => format!("cannot write the chart: {e}"),
        });
    }

    /// The format and precision pickers and the "Export model…" button, enabled for a run of
    /// a network; the save dialog's answer becomes the action.
    fn model_export(&mut self, ui: &mut Ui, entry: &RunEntry) -> Option<Action> {
        let FeatureSource::Network(network) = &entry.run.spec.source else {
            ui.add_enabled(false, egui::Button::new("Export model…"))
                .on_disabled_hover_text("the colour histogram has no model");
            return None;
        };
        let (extension, kind) = FORMATS[self.model_format];
        egui::ComboBox::from_id_salt("model export format")
            .selected_text(format!(".{extension}"))
            .show_ui(ui, |ui| {
                for (index, (extension, kind)) in FORMATS.iter().enumerate() {
                    ui.selectable_value(
                        &mut self.model_format,
                        index,
                        format!(".{extension}: {kind}"),
                    );
                }
            });
        ui.checkbox(&mut self.model_f16, "f16");
        let clicked = ui
            .button("Export model…")
            .on_hover_text(
                "the current run's network and weights, as `reidscope export` writes them",
            )
            .clicked();
        let path = clicked
            .then(|| save_as(&format!("{}.{extension}", network.model), kind, extension))??;
        let path = if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case(extension))
        {
            path
        } else {
            let mut named = path.into_os_string();
            named.push(format!(".{extension}"));
            PathBuf::from(named)
        };
        let precision = if self.model_f16 {
            Precision::F16
        } else {
            Precision::F32
        };
        Some(Action::ExportModel { path, precision })
    }

    fn export_metrics(&mut self, metrics: &MetricsFile) {
        let Some(path) = save_as("metrics.json", "JSON", "json") else {
            return;
        };
        self.message = Some(write_metrics(metrics, &path));
    }
}

fn write_metrics(metrics: &MetricsFile, path: &Path) -> String {
    match metrics.write(path) {
        Ok(()) => format!("wrote {}", path.display()),
        Err(e) => format!("cannot write {}: {e}", path.display()),
    }
}

/// Two overlaid histograms (as fractions of their pairs): matching pairs green, non-matching
/// red, with the distance axis.
fn distance_histograms(ui: &mut Ui, entry: &RunEntry) {
    let pairs = &entry.inspection.pairs;
    let all = pairs
        .positive
        .iter()
        .chain(&pairs.negative)
        .filter(|v| v.is_finite());
    let (low, high) = all.fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
        (lo.min(v), hi.max(v))
    });
    if !(low.is_finite() && high.is_finite()) {
        ui.label("No pairs to show.");
        return;
    }
    let series = [
        (&pairs.positive, MATCH, "same identity, other camera"),
        (&pairs.negative, MISMATCH, "different identities (sample)"),
    ];
    let width = ui.available_width().clamp(320.0, 1100.0);
    let (rect, _) = ui.allocate_exact_size(Vec2::new(width, 220.0), Sense::hover());
    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, 0.0, ui.visuals().extreme_bg_color);
    let plot = Rect::from_min_max(
        rect.min + Vec2::new(8.0, 24.0),
        rect.max - Vec2::new(8.0, 22.0),
    );
    let counts: Vec<Vec<f32>> = series
        .iter()
        .map(|(values, _, _)| {
            let n = values.len().max(1) as f32;
            histogram(values, low, high, BINS)
                .into_iter()
                .map(|c| c as f32 / n)
                .collect()
        })
        .collect();
    let peak = counts
        .iter()
        .flatten()
        .fold(0.0f32, |a, &b| a.max(b))
        .max(1e-6);
    let bin_width = plot.width() / BINS as f32;
    for ((_, color, _), fractions) in series.iter().zip(&counts) {
        for (b, &f) in fractions.iter().enumerate() {
            let x = plot.min.x + b as f32 * bin_width;
            let h = plot.height() * f / peak;
            let bar = Rect::from_min_max(pos2(x, plot.max.y - h), pos2(x + bin_width, plot.max.y));
            painter.rect_filled(bar, 0.0, color.gamma_multiply(0.45));
            painter.rect_stroke(bar, 0.0, Stroke::new(1.0, *color), StrokeKind::Inside);
        }
    }
    let text = ui.visuals().text_color();
    for (i, (values, color, label)) in series.iter().enumerate() {
        painter.text(
            pos2(plot.min.x + 4.0 + 300.0 * i as f32, rect.min.y + 12.0),
            Align2::LEFT_CENTER,
            format!("{label}: {} pairs", values.len()),
            FontId::proportional(12.0),
            *color,
        );
    }
    for (x, value, align) in [
        (plot.min.x, low, Align2::LEFT_CENTER),
        (plot.max.x, high, Align2::RIGHT_CENTER),
    ] {
        painter.text(
            pos2(x, rect.max.y - 10.0),
            align,
            format!("{value:.3}"),
            FontId::proportional(11.0),
            text,
        );
    }
    painter.text(
        pos2(plot.center().x, rect.max.y - 10.0),
        Align2::CENTER_CENTER,
        format!("{} distance", entry.run.spec.eval.metric.name()),
        FontId::proportional(11.0),
        text,
    );
}
