//! Charts drawn with plotters onto any backend: an RGB buffer (the app), a PNG and an SVG file
//! beside it (reports), from one drawing function.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::{
    BitMapBackend, DrawingArea, DrawingBackend, IntoDrawingArea, RGBColor, SVGBackend,
};

use super::figure::write_png;

/// A chart that can draw itself on a plotters drawing area.
pub trait Chart {
    /// Draws the whole chart onto `area`.
    fn draw<DB: DrawingBackend>(&self, area: DrawingArea<DB, Shift>) -> Result<(), String>;
}

/// A palette colour ([`super::palette`]) for plotters.
pub fn rgb([r, g, b]: [u8; 3]) -> RGBColor {
    RGBColor(r, g, b)
}

/// Renders `chart` into an RGB buffer of `width × height` pixels.
pub fn render_rgb(chart: &impl Chart, width: u32, height: u32) -> Result<Vec<u8>, String> {
    let mut buffer = vec![255u8; (width * height * 3) as usize];
    chart.draw(BitMapBackend::with_buffer(&mut buffer, (width, height)).into_drawing_area())?;
    Ok(buffer)
}

/// Writes `chart` as a PNG and an SVG of `width × height`, each atomically.
pub fn write_chart(
    png: &Path,
    svg: &Path,
    chart: &impl Chart,
    (width, height): (u32, u32),
) -> Result<(), String> {
    write_png(png, width, height, render_rgb(chart, width, height)?)?;
    let mut text = String::new();
    chart.draw(SVGBackend::with_string(&mut text, (width, height)).into_drawing_area())?;
    crate::io::write_atomic(svg, |w| w.write_all(text.as_bytes()))
        .map_err(|e| format!("{}: {e}", svg.display()))
}
