//! Compare view: two runs on the same queries side by side — how many queries changed their
//! top-1, per-query AP differences (the list sorts by them), for one network in two precisions
//! the feature drift per query, and for the selected query both ranked lists with each entry's
//! rank in the other run. One click starts the current run in the other precision.

use std::collections::HashMap;
use std::sync::Arc;

use eframe::egui::{self, Color32, RichText, Ui};

use crate::backend::Precision;
use crate::eval::compare::Comparison;
use crate::eval::drift::FeatureDrift;
use crate::run::FeatureSource;

use super::action::{Action, CompareOrder};
use super::choice::choice;
use super::dialogs::save_as;
use super::format::{camera_label, distance_text, drift_text, outcome_text, percent};
use super::jobs::{LIST_DEPTH, RunEntry};
use super::keys::navigate;
use super::theme::{BETTER, MATCH, MISMATCH, WORSE};
use super::thumbnails::Thumbnails;
use super::tiles::{Tile, query_tile, tile_row};

/// Compare view state.
pub struct CompareView {
    /// First run (index).
    pub a: usize,
    /// Second run (index).
    pub b: usize,
    /// Selected query; `None`: the top of the list.
    pub selected: Option<usize>,
    /// How the query list is ordered.
    pub order: CompareOrder,
    /// Entries shown per list.
    pub k: usize,
    comparison: Option<((usize, usize), Comparison, Option<FeatureDrift>)>,
}

impl Default for CompareView {
    fn default() -> Self {
        CompareView {
            a: 0,
            b: 1,
            selected: None,
            order: CompareOrder::LossesFirst,
            k: 10,
            comparison: None,
        }
    }
}

impl CompareView {
    /// Draws the view; `current` is the run the other views show.
    pub fn show(
        &mut self,
        ui: &mut Ui,
        thumbs: &mut Thumbnails,
        runs: &[Arc<RunEntry>],
        current: usize,
    ) -> Option<Action> {
        let mut action = None;
        if runs.len() < 2 {
            ui.heading("Compare two runs");
            ui.label(
                "Finish a second run on the same dataset (another model, precision, distance or \
                 re-ranking) to compare it with the first, query by query.",
            );
            action = other_precision_button(ui, &runs[current]);
            return action;
        }
        self.a = self.a.min(runs.len() - 1);
        self.b = self.b.min(runs.len() - 1);
        ui.horizontal(|ui| {
            for (label, index) in [("A", &mut self.a), ("B", &mut self.b)] {
                let names = runs.iter().enumerate().map(|(i, e)| (i, e.name.clone()));
                choice(ui, label, index, names, 330.0);
            }
            ui.add(egui::Slider::new(&mut self.k, 5..=50).text("top k"));
            action = other_precision_button(ui, &runs[current]);
            if ui
                .button("Export comparison…")
                .on_hover_text("Both runs' metrics, top-1 changes, AP difference and feature drift per query, as JSON")
                .clicked()
                && let Some(path) = save_as("comparison.json", "JSON", "json")
            {
                action = Some(Action::ExportComparison(path));
            }
        });
        let (a, b) = (&runs[self.a], &runs[self.b]);
        if !a.run.same_split(&b.run) {
            ui.colored_label(
                MISMATCH,
                "These runs are on different query or gallery sets; choose two runs of one dataset.",
            );
            return action;
        }
        if self
            .comparison
            .as_ref()
            .is_none_or(|(k, _, _)| *k != (self.a, self.b))
        {
            let (comparison, drift) = a.compare(b);
            self.comparison = Some(((self.a, self.b), comparison, drift));
        }
        let Some((_, comparison, drift)) = self.comparison.clone() else {
            return action;
        };
        ui.label(
            RichText::new(format!(
                "top-1 changed for {} of {} queries · B lost a correct top-1 on {} and gained one on {} · mean AP difference (B − A) {:+.2} points · R1 {} → {} · mAP {} → {}",
                comparison.changed_top1,
                comparison.ap_diff.len(),
                comparison.lost_top1,
                comparison.gained_top1,
                comparison.mean_ap_diff * 100.0,
                percent(a.run.metrics.rank(1)),
                percent(b.run.metrics.rank(1)),
                percent(a.run.metrics.map),
                percent(b.run.metrics.map),
            ))
            .strong(),
        );
        if let Some(drift) = &drift {
            ui.label(
                RichText::new(format!(
                    "feature drift A → B (1 − cos per query): max {} · mean {} · top-1 changed for {} queries · mAP {:+.2} points",
                    drift_text(drift.max),
                    drift_text(drift.mean),
                    comparison.changed_top1,
                    (b.run.metrics.map - a.run.metrics.map) * 100.0,
                ))
                .strong(),
            );
        } else if self.order == CompareOrder::DriftFirst {
            self.order = CompareOrder::LossesFirst;
        }
        let order = match (self.order, &drift) {
            (CompareOrder::DriftFirst, Some(drift)) => drift.largest_first(),
            (order, _) => comparison.order(order == CompareOrder::GainsFirst),
        };
        let Some(&top) = order.first() else {
            ui.label("These runs have no queries.");
            return action;
        };
        let mut selected = self.selected.filter(|&q| q < order.len()).unwrap_or(top);
        navigate(ui, &order, &mut selected);
        self.selected = Some(selected);
        egui::Panel::left("compare list")
            .default_size(300.0)
            .show(ui, |ui| self.list(ui, &comparison, drift.as_ref(), &order));
        egui::CentralPanel::default().show(ui, |ui| {
            egui::ScrollArea::vertical()
                .id_salt("compare scroll")
                .auto_shrink(false)
                .show(ui, |ui| {
                    self.detail(ui, thumbs, (a, b), &comparison, drift.as_ref())
                });
        });
        action
    }

    fn list(
        &mut self,
        ui: &mut Ui,
        comparison: &Comparison,
        drift: Option<&FeatureDrift>,
        order: &[usize],
    ) {
        ui.horizontal(|ui| {
            ui.label("Queries by");
            ui.radio_value(&mut self.order, CompareOrder::LossesFirst, "AP loss");
            ui.radio_value(&mut self.order, CompareOrder::GainsFirst, "AP gain");
            if drift.is_some() {
                ui.radio_value(&mut self.order, CompareOrder::DriftFirst, "drift");
            }
        });
        egui::ScrollArea::vertical()
            .id_salt("compare list scroll")
            .auto_shrink(false)
            .show_rows(ui, 18.0, order.len(), |ui, range| {
                for &q in &order[range] {
                    let mut text = match comparison.ap_diff[q] {
                        Some(d) => format!("#{q:<5} ΔAP {:+6.1}", d * 100.0),
                        None => format!("#{q:<5} not scored"),
                    };
                    if let Some(drift) = drift {
                        text.push_str(&format!(" drift {}", drift_text(drift.per_query[q])));
                    }
                    let color = match comparison.ap_diff[q] {
                        Some(d) if d > 1e-9 => BETTER,
                        Some(d) if d < -1e-9 => WORSE,
                        _ => ui.visuals().text_color(),
                    };
                    if ui
                        .selectable_label(
                            self.selected == Some(q),
                            RichText::new(text).monospace().color(color),
                        )
                        .clicked()
                    {
                        self.selected = Some(q);
                    }
                }
            });
    }

    fn detail(
        &self,
        ui: &mut Ui,
        thumbs: &mut Thumbnails,
        (a, b): (&RunEntry, &RunEntry),
        comparison: &Comparison,
        drift: Option<&FeatureDrift>,
    ) {
        let q = self.selected.unwrap_or_default();
        let query = &a.run.queries[q];
        ui.horizontal(|ui| {
            query_tile(ui, thumbs, &query.path, format!("query #{q}"), 1.0);
            ui.vertical(|ui| {
                ui.heading(format!(
                    "Query {q}: pid {} · camera {}",
                    query.pid,
                    camera_label(query.camid)
                ));
                let ap = |e: &RunEntry| outcome_text(e.run.evaluation.per_query[q]);
                ui.label(format!("A: {}", ap(a)));
                ui.label(format!("B: {}", ap(b)));
                if let Some(d) = comparison.ap_diff[q] {
                    ui.label(RichText::new(format!("ΔAP {:+.1} points", d * 100.0)).strong());
                }
                if let Some(drift) = drift {
                    ui.label(format!(
                        "feature drift (1 − cos) {}",
                        drift_text(drift.per_query[q])
                    ));
                }
                ui.label(
                    RichText::new(
                        "Under each image: its rank in this run and in the other one \
                         (green: this run does better with it, red: worse)",
                    )
                    .weak(),
                );
            });
        });
        for (label, this, other) in [("A", a, ("B", b)), ("B", b, ("A", a))] {
            ui.add_space(6.0);
            ui.label(RichText::new(format!("{label}: {}", this.name)).strong());
            self.ranked_row(ui, thumbs, this, other);
        }
    }

    /// `this` run's top-k for the selected query, each entry marked with its rank in the
    /// other run.
    fn ranked_row(
        &self,
        ui: &mut Ui,
        thumbs: &mut Thumbnails,
        this: &RunEntry,
        (other_label, other): (&str, &RunEntry),
    ) {
        let q = self.selected.unwrap_or_default();
        let ranks_in_other: HashMap<usize, usize> = other.inspection.queries[q]
            .top
            .iter()
            .filter_map(|e| Some((e.gallery, e.rank?)))
            .collect();
        let entries: Vec<_> = this.inspection.queries[q]
            .top
            .iter()
            .filter_map(|e| Some((e, e.rank?)))
            .take(self.k)
            .collect();
        let marks: Vec<([String; 2], Option<Color32>)> = entries
            .iter()
            .map(|(e, rank)| {
                let other_rank = ranks_in_other.get(&e.gallery).copied();
                let mark = match other_rank {
                    Some(r) if r == *rank => format!("{other_label} same"),
                    Some(r) => format!("{other_label} #{r}"),
                    None => format!("{other_label} >#{LIST_DEPTH}"),
                };
                // Better here: a true match ranked higher, or a wrong one ranked lower.
                let higher_here = other_rank.is_none_or(|r| r > *rank);
                let color = (other_rank != Some(*rank)).then_some(if higher_here == e.matches {
                    BETTER
                } else {
                    WORSE
                });
                (
                    [format!("#{rank} · {mark}"), distance_text(e.distance)],
                    color,
                )
            })
            .collect();
        let tiles: Vec<Tile> = entries
            .iter()
            .zip(&marks)
            .map(|((e, _), (caption, color))| Tile {
                path: &this.run.gallery[e.gallery].path,
                frame: Some(if e.matches { MATCH } else { MISMATCH }),
                caption,
                caption_color: *color,
                faded: false,
            })
            .collect();
        tile_row(ui, thumbs, &tiles, 0.9);
    }
}

/// "Current run in f16" (or f32): starts the current run again in the other precision.
fn other_precision_button(ui: &mut Ui, current: &RunEntry) -> Option<Action> {
    let FeatureSource::Network(network) = &current.run.spec.source else {
        return None;
    };
    let other = match network.precision {
        Precision::F32 => Precision::F16,
        Precision::F16 => Precision::F32,
    };
    ui.button(format!("Current run in {other}"))
        .on_hover_text(
            "The same model, weights and images in the other precision (f16 on a GPU adapter), \
             compared with this run: per-query feature drift, top-1 changes, mAP difference",
        )
        .clicked()
        .then_some(Action::StartInPrecision(other))
}
