//! CMC curves of one or more runs on one chart (PNG, SVG or an RGB buffer for the GUI).

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::chart::{Chart, render_rgb, write_chart};
use super::font::{FAMILY, ensure_registered};
use super::metrics_file::MetricsFile;

/// Ranks shown on the x axis at most.
pub const PLOT_RANKS: usize = 50;

/// Line colours, one per run (Tableau 10).
const COLORS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Legend text of a run: its label with rank-1 and mAP.
pub fn legend(run: &MetricsFile) -> String {
    let label = if run.label.is_empty() {
        "run"
    } else {
        &run.label
    };
    format!(
        "{label}: R1 {:.1}%, mAP {:.1}%",
        run.rank(1) * 100.0,
        run.map * 100.0
    )
}

/// The CMC curves of some runs.
struct CmcChart<'a>(&'a [MetricsFile]);

impl Chart for CmcChart<'_> {
    fn draw<DB: DrawingBackend>(&self, area: DrawingArea<DB, Shift>) -> Result<(), String> {
        draw(area, self.0)
    }
}

fn draw<DB: DrawingBackend>(
    area: DrawingArea<DB, Shift>,
    runs: &[MetricsFile],
) -> Result<(), String> {
    ensure_registered();
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    area.fill(&WHITE).map_err(err)?;
    let ranks = runs
        .iter()
        .map(|r| r.cmc.len())
        .max()
        .unwrap_or(1)
        .clamp(2, PLOT_RANKS);
    let low = runs
        .iter()
        .flat_map(|r| r.cmc.first())
        .fold(1.0f64, |a, &b| a.min(b));
    let y_min = ((low * 100.0 - 5.0) / 10.0).floor().max(0.0) * 10.0;
    let mut chart = ChartBuilder::on(&area)
        .caption("Cumulative matching characteristic", (FAMILY, 20))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(56)
        .build_cartesian_2d(1f64..ranks as f64, y_min..100.0)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("Rank")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .y_desc("Matching rate (%)")
        .label_style((FAMILY, 14))
        .axis_desc_style((FAMILY, 15))
        .draw()
        .map_err(err)?;
    for (i, run) in runs.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let points = run
            .cmc
            .iter()
            .take(ranks)
            .enumerate()
            .map(|(r, v)| ((r + 1) as f64, v * 100.0));
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))
            .map_err(err)?
            .label(legend(run))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .label_font((FAMILY, 14))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    area.present().map_err(err)
}

/// Renders the chart into an RGB buffer of `width × height` pixels.
pub fn render_cmc_rgb(runs: &[MetricsFile], width: u32, height: u32) -> Result<Vec<u8>, String> {
    render_rgb(&CmcChart(runs), width, height)
}

/// Writes the chart as PNG and SVG next to each other, each atomically.
pub fn write_cmc_plots(png: &Path, svg: &Path, runs: &[MetricsFile]) -> Result<(), String> {
    write_chart(png, svg, &CmcChart(runs), (900, 600))
}
