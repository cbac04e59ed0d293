//! Embedding view: the run's query and gallery features laid out in 2-D (PCA at once, t-SNE
//! computed in the background with progress), one point per image coloured by identity or
//! camera, queries as diamonds. Drag to pan, scroll to zoom, hover for the image, click to
//! open it (a query in the query view, a gallery image in the dataset browser); the selected
//! query, its top-k and its true matches are ringed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use eframe::egui::{
    self, Color32, Mesh, Pos2, Rect, RichText, Sense, Shape, Stroke, Ui, Vec2, vec2,
};

use crate::data::Sample;
use crate::inspect::projection::{Projection, pca, tsne};

use super::action::{Action, Framing, SplitTab};
use super::format::camera_label;
use super::jobs::RunEntry;
use super::theme::{MATCH, QUERY, camera_colour, identity_colour};
use super::thumbnails::Thumbnails;
use super::tiles::{TILE_HEIGHT, TILE_WIDTH, paint_image};

/// Half the side of a gallery point, in points.
const POINT: f32 = 2.0;
/// Half the diagonal of a query's diamond.
const QUERY_POINT: f32 = 3.5;
/// How far from the pointer a point still counts as hovered.
const HOVER_RADIUS: f32 = 8.0;
/// Zoom factor per scrolled point.
const ZOOM_PER_SCROLL: f32 = 1.002;

/// What the points are coloured by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PointColour {
    /// One hue per identity.
    Identity,
    /// One colour per camera.
    Camera,
}

/// Where a finished layout (or why it failed) is left for the UI thread.
type LayoutResult = Arc<Mutex<Option<Result<Vec<[f32; 2]>, String>>>>;

/// A layout computed on another thread.
struct Background {
    progress: Arc<AtomicU32>,
    result: LayoutResult,
    cancel: Arc<AtomicBool>,
}

/// A layout of the run's points.
enum Layout {
    /// Being computed.
    Computing(Background),
    /// Positions as fractions of the layout's extent, queries first, then gallery.
    Ready(Vec<[f32; 2]>),
    /// The computation failed.
    Failed(String),
}

/// Embedding view state.
pub struct EmbeddingView {
    /// How the features are laid out.
    pub projection: Projection,
    /// What the points are coloured by.
    pub colour: PointColour,
    /// What part of the layout is shown.
    pub framing: Framing,
    layouts: HashMap<Projection, Layout>,
    run: Option<usize>,
}

impl Default for EmbeddingView {
    fn default() -> Self {
        EmbeddingView {
            projection: Projection::Pca,
            colour: PointColour::Identity,
            framing: Framing::default(),
            layouts: HashMap::new(),
            run: None,
        }
    }
}

impl Drop for EmbeddingView {
    fn drop(&mut self) {
        self.forget_layouts();
    }
}

/// One image of the map.
struct Point<'a> {
    sample: &'a Sample,
    is_query: bool,
    /// Index among the run's queries or gallery images.
    index: usize,
}

impl EmbeddingView {
    /// Draws the view for run `index`, `selected` being the query view's query and `k` its
    /// list length.
    pub fn show(
        &mut self,
        ui: &mut Ui,
        thumbs: &mut Thumbnails,
        (index, entry): (usize, &RunEntry),
        (selected, k): (usize, usize),
    ) -> Option<Action> {
        if self.run != Some(index) {
            self.forget_layouts();
            self.run = Some(index);
            self.framing = Framing::default();
        }
        let run = &entry.run;
        let total = run.queries.len() + run.gallery.len();
        ui.horizontal(|ui| {
            ui.label("Layout");
            for projection in Projection::ALL {
                let name = match projection {
                    Projection::Pca => "PCA",
                    Projection::Tsne => "t-SNE",
                };
                ui.radio_value(&mut self.projection, projection, name);
            }
            ui.separator();
            ui.label("Colour by");
            ui.radio_value(&mut self.colour, PointColour::Identity, "identity");
            ui.radio_value(&mut self.colour, PointColour::Camera, "camera");
            ui.separator();
            if ui.button("Fit").on_hover_text("Show the whole layout").clicked() {
                self.framing = Framing::default();
            }
            ui.label(
                RichText::new(format!(
                    "{total} images: ◆ query, ■ gallery · ring: query #{selected} (blue), its top {k} (white), its true matches (green) · drag to pan, scroll to zoom, click to open"
                ))
                .weak(),
            );
        });
        let ctx = ui.ctx().clone();
        let projection = self.projection;
        let layout = self.layouts.entry(projection).or_insert_with(|| {
            let mut features = run.query_features.clone();
            features.extend_from_slice(&run.gallery_features);
            start_layout(&ctx, projection, features, run.feature_dim)
        });
        poll(layout);
        let positions = match layout {
            Layout::Ready(positions) => positions,
            Layout::Computing(background) => {
                let done = f32::from_bits(background.progress.load(Ordering::Relaxed));
                ui.add(
                    egui::ProgressBar::new(done)
                        .desired_width(400.0)
                        .text(format!("computing the {projection} layout")),
                );
                return None;
            }
            Layout::Failed(reason) => {
                ui.colored_label(super::theme::ERROR, reason.as_str());
                return None;
            }
        };
        let points: Vec<Point> = run
            .queries
            .iter()
            .enumerate()
            .map(|(index, sample)| Point {
                sample,
                is_query: true,
                index,
            })
            .chain(run.gallery.iter().enumerate().map(|(index, sample)| Point {
                sample,
                is_query: false,
                index,
            }))
            .collect();
        let highlights = Highlights::of(entry, selected, k);
        let style = (&mut self.framing, self.colour);
        map(ui, thumbs, style, (positions, &points), &highlights)
    }

    /// True while a layout is being computed.
    pub fn computing(&self) -> bool {
        self.layouts
            .values()
            .any(|layout| matches!(layout, Layout::Computing(_)))
    }

    /// Stops the layouts still being computed and drops all.
    fn forget_layouts(&mut self) {
        for layout in self.layouts.values() {
            if let Layout::Computing(background) = layout {
                background.cancel.store(true, Ordering::Relaxed);
            }
        }
        self.layouts.clear();
    }
}

/// Draws the points into the rest of `ui`, framed by `framing` (which dragging and scrolling
/// change); returns what a click asks for.
fn map(
    ui: &mut Ui,
    thumbs: &mut Thumbnails,
    (framing, colour): (&mut Framing, PointColour),
    (positions, points): (&[[f32; 2]], &[Point]),
    highlights: &Highlights,
) -> Option<Action> {
    let size = ui.available_size().max(vec2(200.0, 200.0));
    let (rect, response) = ui.allocate_exact_size(size, Sense::click_and_drag());
    let screen = Screen::new(rect, *framing);
    if response.dragged() {
        *framing = screen.panned(response.drag_delta());
    }
    if response.hovered() {
        let scroll = ui.input(|i| i.smooth_scroll_delta.y);
        if scroll != 0.0
            && let Some(pointer) = response.hover_pos()
        {
            *framing = screen.zoomed(pointer, ZOOM_PER_SCROLL.powf(scroll));
        }
    }
    let screen = Screen::new(rect, *framing);
    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, 0.0, ui.visuals().extreme_bg_color);
    let mut mesh = Mesh::default();
    for (point, &at) in points.iter().zip(positions) {
        let centre = screen.to_screen(at);
        if !rect.expand(QUERY_POINT).contains(centre) {
            continue;
        }
        let colour = match colour {
            PointColour::Identity => identity_colour(point.sample.pid),
            PointColour::Camera => camera_colour(point.sample.camid),
        };
        if point.is_query {
            add_diamond(&mut mesh, centre, QUERY_POINT, colour);
        } else {
            mesh.add_colored_rect(
                Rect::from_center_size(centre, Vec2::splat(2.0 * POINT)),
                colour,
            );
        }
    }
    painter.add(Shape::mesh(mesh));
    highlights.paint(&painter, &screen, positions, points.len());

    let hovered = response
        .hover_pos()
        .and_then(|pointer| nearest(&screen, positions, pointer));
    // The accessible label names the hovered point, as the tooltip does.
    let mut label = format!("embedding map: {} points", points.len());
    if let Some(i) = hovered {
        label.push_str(&format!(" · hovered: {}", point_text(&points[i])));
    }
    response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Image, true, &label));
    let mut action = None;
    if let Some(i) = hovered {
        let point = &points[i];
        painter.circle_stroke(
            screen.to_screen(positions[i]),
            QUERY_POINT + 3.0,
            Stroke::new(1.5, ui.visuals().strong_text_color()),
        );
        let text = point_text(point);
        response.clone().on_hover_ui_at_pointer(|ui| {
            ui.label(RichText::new(&text).strong());
            let (image, _) = ui.allocate_exact_size(vec2(TILE_WIDTH, TILE_HEIGHT), Sense::hover());
            // An unreadable image shows its placeholder.
            let _ = paint_image(ui, thumbs, &point.sample.path, image, false);
            ui.label(RichText::new(point.sample.path.display().to_string()).small());
        });
        if response.clicked() {
            action = Some(open(point));
        }
    }
    action
}

/// "query #3 · pid 12 · camera c2" (or gallery), as the hover shows it.
fn point_text(point: &Point) -> String {
    let split = if point.is_query { "query" } else { "gallery" };
    format!(
        "{split} #{} · pid {} · camera {}",
        point.index,
        point.sample.pid,
        camera_label(point.sample.camid)
    )
}

/// What clicking a point does: a query opens in the query view, a gallery image in the
/// dataset browser.
fn open(point: &Point) -> Action {
    if point.is_query {
        Action::OpenQuery(point.index)
    } else {
        Action::OpenImage(SplitTab::Gallery, point.sample.path.clone())
    }
}

/// The map's rectangle and framing: layout fractions ↔ screen positions.
struct Screen {
    rect: Rect,
    framing: Framing,
    /// Screen points per layout fraction.
    scale: f32,
}

impl Screen {
    fn new(rect: Rect, framing: Framing) -> Self {
        let fitted = 0.94 * rect.width().min(rect.height());
        Screen {
            rect,
            framing,
            scale: fitted * framing.zoom,
        }
    }

    fn to_screen(&self, at: [f32; 2]) -> Pos2 {
        let c = self.framing.centre;
        self.rect.center() + vec2(at[0] - c[0], c[1] - at[1]) * self.scale
    }

    fn to_layout(&self, pos: Pos2) -> [f32; 2] {
        let d = (pos - self.rect.center()) / self.scale;
        let c = self.framing.centre;
        [c[0] + d.x, c[1] - d.y]
    }

    /// The framing after a drag of `delta` screen points.
    fn panned(&self, delta: Vec2) -> Framing {
        let c = self.framing.centre;
        Framing {
            centre: [c[0] - delta.x / self.scale, c[1] + delta.y / self.scale],
            ..self.framing
        }
    }

    /// The framing zoomed by `factor` about the screen position `at`, which stays put.
    fn zoomed(&self, at: Pos2, factor: f32) -> Framing {
        let zoom = (self.framing.zoom * factor).clamp(0.5, 400.0);
        let anchor = self.to_layout(at);
        let ratio = self.framing.zoom / zoom;
        let c = self.framing.centre;
        Framing {
            centre: [
                anchor[0] + (c[0] - anchor[0]) * ratio,
                anchor[1] + (c[1] - anchor[1]) * ratio,
            ],
            zoom,
        }
    }
}

/// The point nearest to `pointer` within the hover radius.
fn nearest(screen: &Screen, positions: &[[f32; 2]], pointer: Pos2) -> Option<usize> {
    positions
        .iter()
        .enumerate()
        .map(|(i, &at)| (i, screen.to_screen(at).distance_sq(pointer)))
        .filter(|&(_, d)| d <= HOVER_RADIUS * HOVER_RADIUS)
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(i, _)| i)
}

fn add_diamond(mesh: &mut Mesh, centre: Pos2, r: f32, colour: Color32) {
    let base = mesh.vertices.len() as u32;
    for offset in [vec2(0.0, -r), vec2(r, 0.0), vec2(0.0, r), vec2(-r, 0.0)] {
        mesh.colored_vertex(centre + offset, colour);
    }
    mesh.add_triangle(base, base + 1, base + 2);
    mesh.add_triangle(base, base + 2, base + 3);
}

/// The selected query and its lists, as point indices (queries first, then gallery).
struct Highlights {
    query: usize,
    top: Vec<usize>,
    matches: Vec<usize>,
}

impl Highlights {
    fn of(entry: &RunEntry, selected: usize, k: usize) -> Self {
        let queries = entry.run.queries.len();
        let Some(lists) = entry.inspection.queries.get(selected) else {
            return Highlights {
                query: usize::MAX,
                top: Vec::new(),
                matches: Vec::new(),
            };
        };
        Highlights {
            query: selected,
            top: lists
                .top
                .iter()
                .filter(|e| e.rank.is_some())
                .take(k)
                .map(|e| queries + e.gallery)
                .collect(),
            matches: lists.relevant.iter().map(|&(g, _)| queries + g).collect(),
        }
    }

    fn paint(&self, painter: &egui::Painter, screen: &Screen, positions: &[[f32; 2]], n: usize) {
        let ring = |i: usize, radius: f32, colour: Color32| {
            if i < n {
                painter.circle_stroke(
                    screen.to_screen(positions[i]),
                    radius,
                    Stroke::new(1.5, colour),
                );
            }
        };
        for &i in &self.top {
            ring(i, POINT + 3.0, Color32::WHITE);
        }
        for &i in &self.matches {
            ring(i, POINT + 5.0, MATCH);
        }
        ring(self.query, QUERY_POINT + 4.0, QUERY);
        ring(self.query, QUERY_POINT + 6.0, QUERY);
    }
}

/// Starts computing `projection` of row-major `features` on another thread.
fn start_layout(
    ctx: &egui::Context,
    projection: Projection,
    features: Vec<f32>,
    dim: usize,
) -> Layout {
    let background = Background {
        progress: Arc::new(AtomicU32::new(0f32.to_bits())),
        result: Arc::new(Mutex::new(None)),
        cancel: Arc::new(AtomicBool::new(false)),
    };
    let (progress, result, cancel) = (
        Arc::clone(&background.progress),
        Arc::clone(&background.result),
        Arc::clone(&background.cancel),
    );
    let ctx = ctx.clone();
    let spawned = std::thread::Builder::new()
        .name(format!("{projection} layout"))
        .spawn(move || {
            let computed = match projection {
                Projection::Pca => Ok(pca(&features, dim)),
                Projection::Tsne => {
                    let mut on_progress = |done: f32| {
                        progress.store(done.to_bits(), Ordering::Relaxed);
                        ctx.request_repaint();
                    };
                    tsne(&features, dim, &mut on_progress, &cancel).map_err(|e| e.to_string())
                }
            };
            *result.lock().expect("layout result poisoned") = Some(computed.map(|p| fractions(&p)));
            ctx.request_repaint();
        });
    match spawned {
        Ok(_) => Layout::Computing(background),
        Err(e) => Layout::Failed(format!("cannot start the layout thread: {e}")),
    }
}

/// Takes a finished background result.
fn poll(layout: &mut Layout) {
    let Layout::Computing(background) = layout else {
        return;
    };
    let finished = background
        .result
        .lock()
        .expect("layout result poisoned")
        .take();
    match finished {
        Some(Ok(positions)) => *layout = Layout::Ready(positions),
        Some(Err(reason)) => *layout = Layout::Failed(reason),
        None => {}
    }
}

/// Positions scaled into 0..1 on the longer axis, centred on the shorter, aspect kept.
fn fractions(points: &[[f32; 2]]) -> Vec<[f32; 2]> {
    let (mut lo, mut hi) = ([f32::INFINITY; 2], [f32::NEG_INFINITY; 2]);
    for p in points {
        for a in 0..2 {
            lo[a] = lo[a].min(p[a]);
            hi[a] = hi[a].max(p[a]);
        }
    }
    let extent = (hi[0] - lo[0]).max(hi[1] - lo[1]);
    if !extent.is_finite() || extent <= 0.0 {
        return vec![[0.5; 2]; points.len()];
    }
    let pad = [
        (extent - (hi[0] - lo[0])) / 2.0,
        (extent - (hi[1] - lo[1])) / 2.0,
    ];
    points
        .iter()
        .map(|p| {
            [
                (p[0] - lo[0] + pad[0]) / extent,
                (p[1] - lo[1] + pad[1]) / extent,
            ]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use eframe::egui::pos2;

    #[test]
    fn fractions_fill_the_longer_axis_and_centre_the_shorter() {
        let f = fractions(&[[0.0, 0.0], [4.0, 2.0]]);
        assert_eq!(f, [[0.0, 0.25], [1.0, 0.75]]);
        assert_eq!(fractions(&[[3.0, 3.0]]), [[0.5, 0.5]]);
    }

    #[test]
    fn zooming_keeps_the_point_under_the_pointer() {
        let rect = Rect::from_min_size(pos2(10.0, 20.0), vec2(400.0, 300.0));
        let screen = Screen::new(rect, Framing::default());
        let pointer = pos2(120.0, 90.0);
        let before = screen.to_layout(pointer);
        let zoomed = Screen::new(rect, screen.zoomed(pointer, 3.0));
        let after = zoomed.to_layout(pointer);
        assert!((before[0] - after[0]).abs() < 1e-5 && (before[1] - after[1]).abs() < 1e-5);
        let back = zoomed.to_screen(before);
        assert!(back.distance(pointer) < 1e-3);
    }

    #[test]
    fn panning_moves_the_layout_with_the_pointer() {
        let rect = Rect::from_min_size(Pos2::ZERO, vec2(200.0, 200.0));
        let screen = Screen::new(rect, Framing::default());
        let at = [0.3, 0.6];
        let moved = Screen::new(rect, screen.panned(vec2(15.0, -7.0)));
        let shift = moved.to_screen(at) - screen.to_screen(at);
        assert!((shift - vec2(15.0, -7.0)).length() < 1e-3);
    }
}
