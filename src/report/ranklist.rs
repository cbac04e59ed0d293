//! Ranked-list figures in Torchreid's visrank style: the query (blue border), then its top-k
//! gallery images, green border for the query's identity, red for others; rank and distance
//! under each. Several rows stack into one sheet (the worst queries of a run).

use std::path::{Path, PathBuf};

use plotters::prelude::*;
use rayon::prelude::*;

use super::chart::rgb;
use image::RgbImage;

pub use super::figure::{THUMB_H, THUMB_W, thumbnail};
use super::figure::{paste, write_png};
use super::font::{FAMILY, ensure_registered};
use super::palette::{MATCH, MISMATCH, QUERY};

const BORDER: u32 = 4;
const GAP: u32 = 8;
const QUERY_GAP: u32 = 28;
const MARGIN: u32 = 10;
const TEXT_H: u32 = 46;
const CELL_W: u32 = THUMB_W + 2 * BORDER;
const CELL_H: u32 = THUMB_H + 2 * BORDER;
const ROW_H: u32 = CELL_H + TEXT_H + MARGIN;

/// One gallery image of a ranked list.
#[derive(Debug, Clone)]
pub struct RankedItem {
    /// Image file.
    pub path: PathBuf,
    /// 1-based rank (junk removed).
    pub rank: usize,
    /// Distance to the query.
    pub distance: f32,
    /// Same identity as the query.
    pub matches: bool,
}

/// A query and its ranked gallery list.
#[derive(Debug, Clone)]
pub struct RankedQuery {
    /// Query image file.
    pub path: PathBuf,
    /// Query identity.
    pub pid: i64,
    /// Query camera (0-based).
    pub camid: i64,
    /// Extra text under the query, e.g. its AP.
    pub caption: String,
    /// Gallery images, best first.
    pub items: Vec<RankedItem>,
}

/// The `THUMB_W × THUMB_H` picture of an image file in a figure.
pub type TileOf<'a> = &'a (dyn Fn(&Path) -> RgbImage + Sync);

/// Renders rows of ranked lists into one RGB figure: `(width, height, pixels)`, each image
/// drawn as `tile_of` gives it (the file's [`thumbnail`], or its activation-map overlay).
pub fn render_ranked(rows: &[RankedQuery], tile_of: TileOf) -> Result<(u32, u32, Vec<u8>), String> {
    ensure_registered();
    let k = rows.iter().map(|r| r.items.len()).max().unwrap_or(0) as u32;
    let width = 2 * MARGIN + CELL_W + QUERY_GAP + k * (CELL_W + GAP);
    let height = MARGIN + rows.len().max(1) as u32 * ROW_H;
    let mut canvas = vec![255u8; (width * height * 3) as usize];
    let cell_x = |i: u32| MARGIN + CELL_W + QUERY_GAP + i * (CELL_W + GAP);
    let row_y = |r: usize| MARGIN + r as u32 * ROW_H;

    // Thumbnails are decoded in parallel, then pasted.
    let mut jobs: Vec<(&Path, u32, u32)> = Vec::new();
    for (r, row) in rows.iter().enumerate() {
        jobs.push((&row.path, MARGIN, row_y(r)));
        for (i, item) in row.items.iter().enumerate() {
            jobs.push((&item.path, cell_x(i as u32), row_y(r)));
        }
    }
    let thumbs: Vec<_> = jobs
        .par_iter()
        .map(|(p, x, y)| (tile_of(p), *x, *y))
        .collect();
    for (thumb, x, y) in &thumbs {
        paste(&mut canvas, width, thumb, x + BORDER, y + BORDER);
    }

    {
        let area = BitMapBackend::with_buffer(&mut canvas, (width, height)).into_drawing_area();
        let err = |e: DrawingAreaErrorKind<_>| e.to_string();
        let font = (FAMILY, 12).into_font().color(&BLACK);
        let frame = |x: u32, y: u32, color: RGBColor| {
            let inset = BORDER as i32 / 2;
            Rectangle::new(
                [
                    (x as i32 + inset, y as i32 + inset),
                    ((x + CELL_W) as i32 - inset, (y + CELL_H) as i32 - inset),
                ],
                color.stroke_width(BORDER),
            )
        };
        let text = |lines: &[String], x: u32, y: u32| -> Vec<Text<'_, (i32, i32), String>> {
            lines
                .iter()
                .enumerate()
                .map(|(i, line)| {
                    Text::new(
                        line.clone(),
                        (x as i32, (y + CELL_H + 3 + 14 * i as u32) as i32),
                        font.clone(),
                    )
                })
                .collect()
        };
        for (r, row) in rows.iter().enumerate() {
            let y = row_y(r);
            area.draw(&frame(MARGIN, y, rgb(QUERY))).map_err(err)?;
            let mut lines = vec![format!("id {}", row.pid), format!("cam {}", row.camid + 1)];
            if !row.caption.is_empty() {
                lines.push(row.caption.clone());
            }
            for t in text(&lines, MARGIN, y) {
                area.draw(&t).map_err(err)?;
            }
            for (i, item) in row.items.iter().enumerate() {
                let x = cell_x(i as u32);
                let color = rgb(if item.matches { MATCH } else { MISMATCH });
                area.draw(&frame(x, y, color)).map_err(err)?;
                for t in text(
                    &[format!("#{}", item.rank), format!("{:.3}", item.distance)],
                    x,
                    y,
                ) {
                    area.draw(&t).map_err(err)?;
                }
            }
        }
        area.present().map_err(err)?;
    }
    Ok((width, height, canvas))
}

/// Writes rows of ranked lists as one PNG.
pub fn write_ranked_png(path: &Path, rows: &[RankedQuery], tile_of: TileOf) -> Result<(), String> {
    let (width, height, rgb) = render_ranked(rows, tile_of)?;
    write_png(path, width, height, rgb)
}
