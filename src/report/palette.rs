//! The colours that the figures and the app's views share, as sRGB triples.

/// A true match (same identity).
pub const MATCH: [u8; 3] = [46, 164, 79];
/// A wrong match (another identity).
pub const MISMATCH: [u8; 3] = [214, 48, 49];
/// A junk entry (same identity, same camera).
pub const JUNK: [u8; 3] = [150, 150, 150];
/// The query.
pub const QUERY: [u8; 3] = [60, 120, 230];
/// A rank that improved from one run to another.
pub const BETTER: [u8; 3] = [30, 150, 60];
/// A rank that got worse.
pub const WORSE: [u8; 3] = [200, 60, 40];

/// The JET colour map at `level` / 255, as sRGB: blue → cyan → yellow → red (within one unit
/// of OpenCV's `COLORMAP_JET`, which Torchreid's activation maps use).
pub fn jet(level: u8) -> [u8; 3] {
    let x = f32::from(level) / 255.0;
    let channel =
        |centre: f32| ((1.5 - (4.0 * x - centre).abs()).clamp(0.0, 1.0) * 255.0).round() as u8;
    [channel(3.0), channel(2.0), channel(1.0)]
}
