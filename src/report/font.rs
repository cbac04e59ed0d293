//! The bundled font (DejaVu Sans, assets/fonts/) registered with plotters once.

use std::sync::OnceLock;

use plotters::style::FontStyle;

/// Font family name used by every figure.
pub const FAMILY: &str = "sans-serif";

/// The bundled DejaVu Sans.
pub static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// Makes [`FAMILY`] available to plotters' text rendering (idempotent).
pub fn ensure_registered() {
    static REGISTERED: OnceLock<()> = OnceLock::new();
    REGISTERED.get_or_init(|| {
        // The font is compiled in and known to parse; a failure would only lose text.
        if plotters::style::register_font(FAMILY, FontStyle::Normal, FONT).is_err() {
            tracing::warn!("the bundled font could not be registered; figures will lack text");
        }
    });
}
