//! `curves.png` / `curves.svg` of a training run: the losses per epoch at the top, accuracy
//! and the evaluations' rank-1 and mAP (in %) in the middle, the learning rate below.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::history::EpochRecord;
use crate::report::chart::{Chart, rgb, write_chart};
use crate::report::font::{FAMILY, ensure_registered};
use crate::report::palette::{MATCH, MISMATCH, QUERY};

/// The size of the written figures.
pub const SIZE: (u32, u32) = (900, 900);

/// The curves of a run's history.
pub struct Curves<'a>(pub &'a [EpochRecord]);

/// One line of a panel: legend, colour, a value per record (`None` where it has none).
type Series<'a> = (
    &'a str,
    RGBColor,
    Box<dyn Fn(&EpochRecord) -> Option<f64> + 'a>,
);

impl Chart for Curves<'_> {
    fn draw<DB: DrawingBackend>(&self, area: DrawingArea<DB, Shift>) -> Result<(), String> {
        ensure_registered();
        area.fill(&WHITE).map_err(|e| e.to_string())?;
        let panels = area.split_evenly((3, 1));
        let losses: Vec<Series> = vec![
            ("loss", RGBColor(0, 0, 0), Box::new(|r| Some(r.loss))),
            ("softmax", rgb(QUERY), Box::new(|r| Some(r.loss_softmax))),
            ("triplet", rgb(MISMATCH), Box::new(|r| Some(r.loss_triplet))),
        ];
        let percent = |v: f64| Some(v * 100.0);
        let scores: Vec<Series> = vec![
            (
                "train accuracy",
                RGBColor(0, 0, 0),
                Box::new(move |r| percent(r.accuracy)),
            ),
            (
                "rank-1",
                rgb(MATCH),
                Box::new(move |r| percent(r.evaluation?.0)),
            ),
            (
                "mAP",
                rgb(QUERY),
                Box::new(move |r| percent(r.evaluation?.1)),
            ),
        ];
        panel(
            &panels[0],
            self.0,
            "Loss",
            &losses,
            SeriesLabelPosition::UpperRight,
        )?;
        panel(
            &panels[1],
            self.0,
            "%",
            &scores,
            SeriesLabelPosition::LowerRight,
        )?;
        let rate: Vec<Series> = vec![("learning rate", rgb(QUERY), Box::new(|r| Some(r.lr)))];
        panel(
            &panels[2],
            self.0,
            "Learning rate",
            &rate,
            SeriesLabelPosition::UpperRight,
        )
    }
}

/// One panel: the series over the epochs, with a legend.
fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    records: &[EpochRecord],
    y_label: &str,
    series: &[Series],
    legend: SeriesLabelPosition,
) -> Result<(), String> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let last_epoch = records.iter().map(|r| r.epoch).max().unwrap_or(1).max(2) as f64;
    let top = records
        .iter()
        .flat_map(|r| series.iter().filter_map(|(_, _, value)| value(r)))
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max);
    let mut chart = ChartBuilder::on(area)
        .margin(14)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(1f64..last_epoch, 0f64..(top * 1.05).max(1e-3))
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("Epoch")
        .y_desc(y_label)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .label_style((FAMILY, 13))
        .axis_desc_style((FAMILY, 14))
        .draw()
        .map_err(err)?;
    for (name, color, value) in series {
        let points: Vec<(f64, f64)> = records
            .iter()
            .filter_map(|r| Some((r.epoch as f64, value(r)?)))
            .filter(|(_, v)| v.is_finite())
            .collect();
        if points.is_empty() {
            continue;
        }
        let color = *color;
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
            .map_err(err)?
            .label(*name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart
            .draw_series(
                points
                    .into_iter()
                    .map(|p| Circle::new(p, 3, color.filled())),
            )
            .map_err(err)?;
    }
    chart
        .configure_series_labels()
        .position(legend)
        .label_font((FAMILY, 13))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(err)
}

/// Writes the curves of `records` as `png` and `svg`.
pub fn write_curves(png: &Path, svg: &Path, records: &[EpochRecord]) -> Result<(), String> {
    write_chart(png, svg, &Curves(records), SIZE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curves_are_drawn_with_and_without_evaluations() {
        let records: Vec<EpochRecord> = (1..=12)
            .map(|epoch| {
                let t = epoch as f64;
                EpochRecord {
                    epoch,
                    loss: 6.0 / t,
                    loss_softmax: 5.0 / t,
                    loss_triplet: 1.0 / t,
                    accuracy: 1.0 - 1.0 / t,
                    lr: 3e-4,
                    images_per_s: 40.0,
                    skipped_steps: 0,
                    evaluation: (epoch % 4 == 0).then_some((0.5 + t / 40.0, 0.4 + t / 40.0)),
                }
            })
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let (png, svg) = (dir.path().join("curves.png"), dir.path().join("curves.svg"));
        write_curves(&png, &svg, &records).unwrap();
        let image = image::open(&png).unwrap();
        assert_eq!((image.width(), image.height()), SIZE);
        let text = std::fs::read_to_string(&svg).unwrap();
        assert!(
            text.contains("rank-1") && text.contains("triplet") && text.contains("learning rate"),
            "legend in the SVG"
        );
    }
}
