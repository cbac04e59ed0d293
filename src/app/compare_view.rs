//! Compare view: two runs on the same queries side by side — how many queries changed their
//! top-1, per-query AP differences (the list sorts by them), and for the selected query both
//! ranked lists with each entry's rank in the other run.

use std::collections::HashMap;
use std::sync::Arc;

use eframe::egui::{self, Color32, RichText, Ui};

use super::browser::camera_label;
use super::choice::choice;
use super::jobs::{LIST_DEPTH, RunEntry};
use super::query_view::{distance_text, navigate};
use super::thumbnails::Thumbnails;
use super::tiles::{MATCH, MISMATCH, Tile, query_tile, tile_row};

/// Colour of a rank that improved in the other run.
const BETTER: Color32 = Color32::from_rgb(30, 150, 60);
/// Colour of a rank that got worse.
const WORSE: Color32 = Color32::from_rgb(200, 60, 40);

/// Per-query differences between runs `a` and `b`.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// AP of b minus AP of a, per query (`None` where a query is not scored).
    pub ap_diff: Vec<Option<f64>>,
    /// Queries whose top-1 is a true match in a but not in b.
    pub lost_top1: usize,
    /// Queries whose top-1 is a true match in b but not in a.
    pub gained_top1: usize,
    /// Queries whose top-1 gallery image differs.
    pub changed_top1: usize,
    /// Mean of `ap_diff` over scored queries.
    pub mean_ap_diff: f64,
    /// Queries by AP difference, largest loss first.
    pub order: Vec<usize>,
}

impl Comparison {
    /// Compares two runs over the same queries and gallery.
    pub fn new(a: &RunEntry, b: &RunEntry) -> Comparison {
        let (pa, pb) = (&a.run.evaluation.per_query, &b.run.evaluation.per_query);
        let ap_diff: Vec<Option<f64>> = pa
            .iter()
            .zip(pb)
            .map(|(x, y)| Some(y.as_ref()?.ap - x.as_ref()?.ap))
            .collect();
        let hit = |o: &Option<crate::eval::QueryOutcome>| o.is_some_and(|o| o.first_hit == 0);
        let lost_top1 = pa.iter().zip(pb).filter(|(x, y)| hit(x) && !hit(y)).count();
        let gained_top1 = pa.iter().zip(pb).filter(|(x, y)| !hit(x) && hit(y)).count();
        let first = |e: &RunEntry, q: usize| {
            e.inspection.queries[q]
                .top
                .iter()
                .find(|t| t.rank.is_some())
                .map(|t| t.gallery)
        };
        let changed_top1 = (0..pa.len())
            .filter(|&q| first(a, q) != first(b, q))
            .count();
        let scored: Vec<f64> = ap_diff.iter().flatten().copied().collect();
        let mean_ap_diff = scored.iter().sum::<f64>() / scored.len().max(1) as f64;
        let mut order: Vec<usize> = (0..ap_diff.len()).collect();
        order.sort_by(|&x, &y| {
            let d = |q: usize| ap_diff[q].unwrap_or(f64::INFINITY);
            d(x).total_cmp(&d(y)).then(x.cmp(&y))
        });
        Comparison {
            ap_diff,
            lost_top1,
            gained_top1,
            changed_top1,
            mean_ap_diff,
            order,
        }
    }
}

/// Compare view state.
pub struct CompareView {
    /// First run (index).
    pub a: usize,
    /// Second run (index).
    pub b: usize,
    /// Selected query; `None`: the top of the list.
    pub selected: Option<usize>,
    /// Largest AP gain first instead of largest loss first.
    pub gains_first: bool,
    /// Entries shown per list.
    pub k: usize,
    comparison: Option<((usize, usize), Comparison)>,
}

impl Default for CompareView {
    fn default() -> Self {
        CompareView {
            a: 0,
            b: 1,
            selected: None,
            gains_first: false,
            k: 10,
            comparison: None,
        }
    }
}

impl CompareView {
    /// Draws the view.
    pub fn show(&mut self, ui: &mut Ui, thumbs: &mut Thumbnails, runs: &[Arc<RunEntry>]) {
        if runs.len() < 2 {
            ui.heading("Compare two runs");
            ui.label(
                "Finish a second run on the same dataset (another model, precision, distance or \
                 re-ranking) to compare it with the first, query by query.",
            );
            return;
        }
        self.a = self.a.min(runs.len() - 1);
        self.b = self.b.min(runs.len() - 1);
        ui.horizontal(|ui| {
            for (label, index) in [("A", &mut self.a), ("B", &mut self.b)] {
                let names = runs.iter().enumerate().map(|(i, e)| (i, e.name.clone()));
                choice(ui, label, index, names, 330.0);
            }
            ui.add(egui::Slider::new(&mut self.k, 5..=50).text("top k"));
        });
        let (a, b) = (&runs[self.a], &runs[self.b]);
        if !a.same_split(b) {
            ui.colored_label(
                MISMATCH,
                "These runs are on different query or gallery sets; choose two runs of one dataset.",
            );
            return;
        }
        if self
            .comparison
            .as_ref()
            .is_none_or(|(k, _)| *k != (self.a, self.b))
        {
            self.comparison = Some(((self.a, self.b), Comparison::new(a, b)));
        }
        let comparison = self
            .comparison
            .as_ref()
            .expect("comparison just set")
            .1
            .clone();
        ui.label(
            RichText::new(format!(
                "top-1 changed for {} of {} queries · B lost a correct top-1 on {} and gained one on {} · mean AP difference (B − A) {:+.2} points · R1 {:.1}% → {:.1}% · mAP {:.1}% → {:.1}%",
                comparison.changed_top1,
                comparison.ap_diff.len(),
                comparison.lost_top1,
                comparison.gained_top1,
                comparison.mean_ap_diff * 100.0,
                a.run.metrics.rank(1) * 100.0,
                b.run.metrics.rank(1) * 100.0,
                a.run.metrics.map * 100.0,
                b.run.metrics.map * 100.0,
            ))
            .strong(),
        );
        let mut order = comparison.order.clone();
        if self.gains_first {
            order.reverse();
            // Unscored queries stay last.
            order.rotate_left(comparison.ap_diff.iter().filter(|d| d.is_none()).count());
        }
        let Some(&top) = order.first() else {
            ui.label("These runs have no queries.");
            return;
        };
        let mut selected = self.selected.filter(|&q| q < order.len()).unwrap_or(top);
        navigate(ui, &order, &mut selected);
        self.selected = Some(selected);
        egui::Panel::left("compare list")
            .default_size(300.0)
            .show(ui, |ui| self.list(ui, &comparison, &order));
        egui::CentralPanel::default().show(ui, |ui| {
            egui::ScrollArea::vertical()
                .id_salt("compare scroll")
                .auto_shrink(false)
                .show(ui, |ui| self.detail(ui, thumbs, a, b, &comparison));
        });
    }

    fn list(&mut self, ui: &mut Ui, comparison: &Comparison, order: &[usize]) {
        ui.horizontal(|ui| {
            ui.label("Queries by AP difference:");
            ui.radio_value(&mut self.gains_first, false, "losses first");
            ui.radio_value(&mut self.gains_first, true, "gains first");
        });
        egui::ScrollArea::vertical()
            .id_salt("compare list scroll")
            .auto_shrink(false)
            .show_rows(ui, 18.0, order.len(), |ui, range| {
                for &q in &order[range] {
                    let text = match comparison.ap_diff[q] {
                        Some(d) => format!("#{q:<5} ΔAP {:+6.1}", d * 100.0),
                        None => format!("#{q:<5} not scored"),
                    };
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
        a: &RunEntry,
        b: &RunEntry,
        comparison: &Comparison,
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
                let ap = |e: &RunEntry| {
                    e.run.evaluation.per_query[q].map_or("not scored".into(), |o| {
                        format!("AP {:.1}%, first hit #{}", o.ap * 100.0, o.first_hit + 1)
                    })
                };
                ui.label(format!("A: {}", ap(a)));
                ui.label(format!("B: {}", ap(b)));
                if let Some(d) = comparison.ap_diff[q] {
                    ui.label(RichText::new(format!("ΔAP {:+.1} points", d * 100.0)).strong());
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
