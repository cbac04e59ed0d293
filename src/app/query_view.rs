//! Query view: the sortable query list; for the selected query its ranked gallery (green:
//! same identity, red: another one, grey: junk), its true matches with their ranks, and AP.

use eframe::egui::{self, RichText, Ui};

use crate::eval::rank::top_k;
use crate::eval::{Metric, QueryOrder};

use super::action::Action;
use super::choice::choice;
use super::format::{camera_label, distance_text, outcome_cell, outcome_text};
use super::jobs::{ExternalQuery, LIST_DEPTH, RunEntry};
use super::keys::navigate;
use super::theme::{JUNK, MATCH, MISMATCH};
use super::thumbnails::Thumbnails;
use super::tiles::{Tile, query_tile, tile_row};

/// How the list's orders are offered.
fn order_label(order: QueryOrder) -> &'static str {
    match order {
        QueryOrder::Index => "dataset order",
        QueryOrder::WorstFirst => "AP, worst first",
        QueryOrder::BestFirst => "AP, best first",
        QueryOrder::FirstHit => "first hit, latest first",
        QueryOrder::Pid => "pid",
        QueryOrder::Camera => "camera",
    }
}

/// Query view state.
pub struct QueryView {
    /// Selected query.
    pub selected: usize,
    /// List order.
    pub sort: QueryOrder,
    /// Gallery entries shown.
    pub k: usize,
    /// Show junk entries (greyed) in place.
    pub show_junk: bool,
    /// Tile zoom.
    pub zoom: f32,
    order: Option<(usize, QueryOrder, Vec<usize>)>,
    scroll_to_selected: bool,
}

impl Default for QueryView {
    fn default() -> Self {
        QueryView {
            selected: 0,
            sort: QueryOrder::WorstFirst,
            k: 20,
            show_junk: false,
            zoom: 1.0,
            order: None,
            scroll_to_selected: false,
        }
    }
}

/// Height of a query list row.
const LIST_ROW: f32 = 18.0;

impl QueryView {
    /// The query order for run `index`.
    pub fn order(&mut self, index: usize, entry: &RunEntry) -> &[usize] {
        if self
            .order
            .as_ref()
            .is_none_or(|(i, s, _)| (*i, *s) != (index, self.sort))
        {
            let run = &entry.run;
            let order = run.evaluation.ordered(self.sort, &run.query_labels);
            self.order = Some((index, self.sort, order));
        }
        &self.order.as_ref().expect("order just set").2
    }

    /// Selects query `q` and scrolls the list to it.
    pub fn select(&mut self, q: usize) {
        self.selected = q;
        self.scroll_to_selected = true;
    }

    /// Draws the view for run `index`; `external` is an outside image's ranking, if any.
    pub fn show(
        &mut self,
        ui: &mut Ui,
        thumbs: &mut Thumbnails,
        index: usize,
        entry: &RunEntry,
        external: Option<&ExternalQuery>,
    ) -> Option<Action> {
        let queries = entry.run.queries.len();
        if queries == 0 {
            ui.label("This run has no queries.");
            return None;
        }
        self.selected = self.selected.min(queries - 1);
        let order = self.order(index, entry).to_vec();
        let mut selected = self.selected;
        if navigate(ui, &order, &mut selected) {
            self.select(selected);
        }
        egui::Panel::left("query list")
            .default_size(330.0)
            .show(ui, |ui| self.list(ui, entry, &order));
        let mut action = None;
        egui::CentralPanel::default().show(ui, |ui| {
            action = match external {
                Some(external) => external_ranking(ui, thumbs, self, entry, external),
                None => self.ranking(ui, thumbs, entry),
            };
        });
        action
    }

    fn list(&mut self, ui: &mut Ui, entry: &RunEntry, order: &[usize]) {
        ui.horizontal(|ui| {
            let sorts = QueryOrder::ALL.map(|s| (s, order_label(s).to_string()));
            choice(ui, "Queries by", &mut self.sort, sorts, 150.0);
        });
        ui.label(RichText::new("←/→ previous/next, Home/End first/last").weak());
        let run = &entry.run;
        let spacing = ui.spacing().item_spacing.y;
        let mut area = egui::ScrollArea::vertical()
            .id_salt("query list scroll")
            .auto_shrink(false);
        if std::mem::take(&mut self.scroll_to_selected) {
            let position = order.iter().position(|&q| q == self.selected).unwrap_or(0);
            let offset = (position as f32 * (LIST_ROW + spacing) - 5.0 * LIST_ROW).max(0.0);
            area = area.vertical_scroll_offset(offset);
        }
        area.show_rows(ui, LIST_ROW, order.len(), |ui, range| {
            for &q in &order[range] {
                let sample = &run.queries[q];
                let score = outcome_cell(run.evaluation.per_query[q]);
                let text = format!(
                    "#{q:<5} {:>5} {:<3} {score}",
                    sample.pid,
                    camera_label(sample.camid)
                );
                if ui
                    .selectable_label(self.selected == q, RichText::new(text).monospace())
                    .on_hover_text(sample.path.display().to_string())
                    .clicked()
                {
                    self.selected = q;
                }
            }
        });
    }

    fn ranking(
        &mut self,
        ui: &mut Ui,
        thumbs: &mut Thumbnails,
        entry: &RunEntry,
    ) -> Option<Action> {
        let run = &entry.run;
        let q = self.selected;
        let query = &run.queries[q];
        let mut action = None;
        ui.horizontal(|ui| {
            query_tile(
                ui,
                thumbs,
                &query.path,
                format!("query #{q}"),
                1.3 * self.zoom,
            );
            ui.vertical(|ui| {
                let score = outcome_text(run.evaluation.per_query[q]);
                ui.heading(format!(
                    "Query {q}: pid {} · camera {}",
                    query.pid,
                    camera_label(query.camid)
                ));
                ui.label(RichText::new(score).strong());
                ui.label(
                    RichText::new(query.path.display().to_string())
                        .weak()
                        .small(),
                );
                ui.add_space(6.0);
                ui.horizontal_wrapped(|ui| {
                    ui.add(egui::Slider::new(&mut self.k, 5..=LIST_DEPTH).text("top k"));
                    ui.checkbox(&mut self.show_junk, "show junk (same id, same camera)");
                    ui.add(egui::Slider::new(&mut self.zoom, 0.5..=2.0).text("zoom"));
                });
                action = distance_toggles(ui, entry);
                if ui
                    .button("Query with an image…")
                    .on_hover_text("Or drop an image file on the window")
                    .clicked()
                    && let Some(file) = rfd::FileDialog::new()
                        .add_filter("image", &["jpg", "jpeg", "png"])
                        .pick_file()
                {
                    action = Some(Action::ExternalQuery(file));
                }
            });
        });
        ui.separator();
        egui::ScrollArea::vertical()
            .id_salt("ranking scroll")
            .auto_shrink(false)
            .show(ui, |ui| {
                self.ranked_row(ui, thumbs, entry);
                self.matches_row(ui, thumbs, entry);
            });
        action
    }

    fn ranked_row(&self, ui: &mut Ui, thumbs: &mut Thumbnails, entry: &RunEntry) {
        let run = &entry.run;
        let lists = &entry.inspection.queries[self.selected];
        let shown: Vec<_> = lists
            .top
            .iter()
            .filter(|e| e.rank.is_none_or(|r| r <= self.k))
            .filter(|e| self.show_junk || e.rank.is_some())
            .collect();
        let hits = shown
            .iter()
            .filter(|e| e.rank.is_some() && e.matches)
            .count();
        ui.label(
            RichText::new(format!("Ranked gallery, top {} ({hits} correct)", self.k)).strong(),
        );
        let captions: Vec<[String; 2]> = shown
            .iter()
            .map(|e| {
                let g = &run.gallery[e.gallery];
                [
                    format!(
                        "{} {}",
                        e.rank.map_or("junk".into(), |r| format!("#{r}")),
                        distance_text(e.distance)
                    ),
                    format!("{} {}", g.pid, camera_label(g.camid)),
                ]
            })
            .collect();
        let tiles: Vec<Tile> = shown
            .iter()
            .zip(&captions)
            .map(|(e, caption)| Tile {
                path: &run.gallery[e.gallery].path,
                frame: Some(match (e.rank, e.matches) {
                    (None, _) => JUNK,
                    (Some(_), true) => MATCH,
                    (Some(_), false) => MISMATCH,
                }),
                caption,
                caption_color: None,
                faded: e.rank.is_none(),
            })
            .collect();
        tile_row(ui, thumbs, &tiles, self.zoom);
    }

    fn matches_row(&self, ui: &mut Ui, thumbs: &mut Thumbnails, entry: &RunEntry) {
        let run = &entry.run;
        let relevant = &entry.inspection.queries[self.selected].relevant;
        ui.add_space(8.0);
        ui.label(
            RichText::new(format!("True matches ({}) and their ranks", relevant.len())).strong(),
        );
        if relevant.is_empty() {
            ui.label("None: this identity appears in the gallery only under the query's camera, or not at all.");
            return;
        }
        let captions: Vec<[String; 2]> = relevant
            .iter()
            .map(|&(g, rank)| {
                let sample = &run.gallery[g];
                [format!("#{}", rank + 1), camera_label(sample.camid)]
            })
            .collect();
        let tiles: Vec<Tile> = relevant
            .iter()
            .zip(&captions)
            .map(|(&(g, rank), caption)| Tile {
                path: &run.gallery[g].path,
                frame: Some(MATCH),
                caption,
                caption_color: (rank >= self.k).then_some(MISMATCH),
                faded: false,
            })
            .collect();
        tile_row(ui, thumbs, &tiles, self.zoom);
    }
}

/// Metric and re-ranking switches of the shown run; a change asks for a re-evaluation.
fn distance_toggles(ui: &mut Ui, entry: &RunEntry) -> Option<Action> {
    let eval = &entry.run.spec.eval;
    let (mut metric, mut rerank) = (eval.metric, eval.rerank.is_some());
    ui.horizontal(|ui| {
        ui.label("distance");
        for m in Metric::ALL {
            ui.radio_value(&mut metric, m, m.name());
        }
        ui.checkbox(&mut rerank, "re-ranking");
    });
    ((metric, rerank) != (eval.metric, eval.rerank.is_some()))
        .then_some(Action::Reevaluate { metric, rerank })
}

/// The gallery ranked for an image from outside the dataset (no identity: no colours).
fn external_ranking(
    ui: &mut Ui,
    thumbs: &mut Thumbnails,
    view: &QueryView,
    entry: &RunEntry,
    external: &ExternalQuery,
) -> Option<Action> {
    let run = &entry.run;
    let mut action = None;
    ui.horizontal(|ui| {
        let caption = "external query".to_string();
        query_tile(ui, thumbs, &external.image, caption, 1.3 * view.zoom);
        ui.vertical(|ui| {
            ui.heading("External query");
            ui.label(external.image.display().to_string());
            ui.label("Its identity is unknown: the list shows each image's pid and distance.");
            if ui.button("Back to the dataset's queries").clicked() {
                action = Some(Action::CloseExternal);
            }
        });
    });
    ui.separator();
    let top = top_k(&external.row, view.k);
    let captions: Vec<[String; 2]> = top
        .iter()
        .enumerate()
        .map(|(i, &g)| {
            let sample = &run.gallery[g];
            [
                format!("#{} {}", i + 1, distance_text(external.row[g])),
                format!("{} {}", sample.pid, camera_label(sample.camid)),
            ]
        })
        .collect();
    let tiles: Vec<Tile> = top
        .iter()
        .zip(&captions)
        .map(|(&g, caption)| Tile {
            path: &run.gallery[g].path,
            frame: None,
            caption,
            caption_color: None,
            faded: false,
        })
        .collect();
    egui::ScrollArea::vertical()
        .id_salt("external scroll")
        .show(ui, |ui| tile_row(ui, thumbs, &tiles, view.zoom));
    action
}
