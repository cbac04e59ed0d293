//! Every colour the app draws with. Frames and rank marks are the figures' palette
//! ([`crate::report::palette`]), so a ranked list looks the same in the app and in a report.

use eframe::egui::Color32;

use crate::report::palette;

/// A palette colour for egui.
const fn rgb(color: [u8; 3]) -> Color32 {
    Color32::from_rgb(color[0], color[1], color[2])
}

/// Frame of a correct match; matching-pair histogram.
pub const MATCH: Color32 = rgb(palette::MATCH);
/// Frame of a wrong match; non-matching-pair histogram; an image that cannot be shown.
pub const MISMATCH: Color32 = rgb(palette::MISMATCH);
/// Frame of a junk entry (same identity, same camera).
pub const JUNK: Color32 = rgb(palette::JUNK);
/// Frame of the query and of selected tiles.
pub const QUERY: Color32 = rgb(palette::QUERY);
/// A rank or AP that improved in the other run.
pub const BETTER: Color32 = rgb(palette::BETTER);
/// A rank or AP that got worse.
pub const WORSE: Color32 = rgb(palette::WORSE);
/// Error messages.
pub const ERROR: Color32 = Color32::from_rgb(220, 60, 60);
/// Warnings and notices.
pub const NOTICE: Color32 = Color32::from_rgb(200, 150, 40);
/// A running job's progress text.
pub const PROGRESS: Color32 = Color32::from_rgb(90, 140, 220);

/// Camera colours of the embedding map (repeated past eight cameras).
const CAMERAS: [Color32; 8] = [
    Color32::from_rgb(230, 90, 70),
    Color32::from_rgb(70, 150, 230),
    Color32::from_rgb(90, 190, 90),
    Color32::from_rgb(230, 180, 50),
    Color32::from_rgb(170, 100, 220),
    Color32::from_rgb(60, 200, 200),
    Color32::from_rgb(240, 120, 180),
    Color32::from_rgb(160, 160, 160),
];

/// An identity's colour in the embedding map: hues spread by the golden ratio, so that
/// neighbouring ids differ.
pub fn identity_colour(pid: i64) -> Color32 {
    let hue = (pid.rem_euclid(1 << 20) as f32 * 0.618_034).fract();
    eframe::egui::ecolor::Hsva::new(hue, 0.7, 0.95, 1.0).into()
}

/// A camera's colour in the embedding map.
pub fn camera_colour(camid: i64) -> Color32 {
    CAMERAS[camid.rem_euclid(CAMERAS.len() as i64) as usize]
}
