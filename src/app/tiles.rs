//! Image tiles: a thumbnail with a coloured frame and caption lines, as used by the grids and
//! ranked lists.

use std::path::Path;

use eframe::egui::{
    Align2, Color32, FontId, Rect, Response, Role, Sense, Stroke, StrokeKind, Ui, Vec2, WidgetInfo,
    pos2,
};

use super::format::file_name;
use super::theme::{MISMATCH, QUERY};
use super::thumbnails::{ImageSize, Thumb, Thumbnails};

/// Width of a tile's image area at zoom 1.
pub const TILE_WIDTH: f32 = 64.0;
/// Height of a tile's image area at zoom 1.
pub const TILE_HEIGHT: f32 = 128.0;
/// Height of one caption line.
pub const CAPTION_LINE: f32 = 13.0;
/// Frame width.
const FRAME: f32 = 3.0;

/// One tile to draw.
pub struct Tile<'a> {
    /// Image file.
    pub path: &'a Path,
    /// Frame colour; `None` for no frame.
    pub frame: Option<Color32>,
    /// Lines under the image.
    pub caption: &'a [String],
    /// Caption colour override (e.g. rank changes).
    pub caption_color: Option<Color32>,
    /// Drawn faded (junk).
    pub faded: bool,
}

/// Size of a tile with `lines` caption lines at `zoom`.
pub fn tile_size(zoom: f32, lines: usize) -> Vec2 {
    Vec2::new(
        TILE_WIDTH * zoom + 2.0 * FRAME,
        TILE_HEIGHT * zoom + 2.0 * FRAME + lines as f32 * CAPTION_LINE,
    )
}

/// Draws `tile` at `zoom`; the response is clickable and shows the path on hover. Its
/// accessible label ends in "· activation map" while the image is drawn as its overlay.
pub fn show_tile(ui: &mut Ui, thumbs: &mut Thumbnails, tile: &Tile, zoom: f32) -> Response {
    let size = tile_size(zoom, tile.caption.len());
    let (rect, response) = ui.allocate_exact_size(size, Sense::click());
    let label = |painted: &Result<bool, String>| {
        let mut label = format!("{} {}", file_name(tile.path), tile.caption.join(" "));
        if painted == &Ok(true) {
            label.push_str(" · activation map");
        }
        label
    };
    if !ui.is_rect_visible(rect) {
        response.widget_info(|| WidgetInfo::labeled(Role::Button, true, label(&Ok(false))));
        return response;
    }
    let image_rect = Rect::from_min_size(
        rect.min,
        Vec2::new(size.x, TILE_HEIGHT * zoom + 2.0 * FRAME),
    );
    let painted = paint_image(ui, thumbs, tile.path, image_rect.shrink(FRAME), tile.faded);
    response.widget_info(|| WidgetInfo::labeled(Role::Button, true, label(&painted)));
    if let Some(color) = tile.frame {
        ui.painter().rect_stroke(
            image_rect.shrink(FRAME / 2.0),
            2.0,
            Stroke::new(FRAME, color),
            StrokeKind::Middle,
        );
    }
    if response.hovered() {
        ui.painter().rect_stroke(
            rect,
            2.0,
            Stroke::new(1.0, ui.visuals().strong_text_color()),
            StrokeKind::Outside,
        );
    }
    let color = tile
        .caption_color
        .unwrap_or_else(|| ui.visuals().text_color());
    // Caption glyphs are about 5.5 points wide: longer lines lose their start.
    let max_chars = ((size.x + 8.0) / 5.5) as usize;
    for (i, line) in tile.caption.iter().enumerate() {
        let y = image_rect.max.y + CAPTION_LINE * (i as f32 + 0.5);
        ui.painter().text(
            pos2(rect.center().x, y),
            Align2::CENTER_CENTER,
            shorten(line, max_chars),
            FontId::proportional(10.5),
            if i == 0 {
                color
            } else {
                ui.visuals().weak_text_color()
            },
        );
    }
    let mut hover = tile.path.display().to_string();
    if let Err(reason) = painted {
        hover.push_str(&format!("\n{reason}"));
    }
    response.on_hover_text(hover)
}

/// The query's tile: blue frame, one caption line.
pub fn query_tile(ui: &mut Ui, thumbs: &mut Thumbnails, path: &Path, caption: String, zoom: f32) {
    let caption = [caption];
    let tile = Tile {
        path,
        frame: Some(QUERY),
        caption: &caption,
        caption_color: None,
        faded: false,
    };
    show_tile(ui, thumbs, &tile, zoom);
}

/// Paints the image at `path` fitted into `rect` (aspect kept), or a placeholder; returns
/// whether an activation-map overlay was painted, or why the image cannot be shown.
pub fn paint_image(
    ui: &Ui,
    thumbs: &mut Thumbnails,
    path: &Path,
    rect: Rect,
    faded: bool,
) -> Result<bool, String> {
    let size = if rect.height() > 2.0 * TILE_HEIGHT {
        ImageSize::Full
    } else {
        ImageSize::Thumbnail
    };
    let painter = ui.painter();
    match thumbs.get(path, size) {
        Thumb::Ready(texture, overlay) => {
            let [w, h] = texture.size();
            let scale = (rect.width() / w as f32).min(rect.height() / h as f32);
            let fitted =
                Rect::from_center_size(rect.center(), Vec2::new(w as f32, h as f32) * scale);
            let tint = if faded {
                Color32::from_white_alpha(90)
            } else {
                Color32::WHITE
            };
            painter.image(
                texture.id(),
                fitted,
                Rect::from_min_max(pos2(0.0, 0.0), pos2(1.0, 1.0)),
                tint,
            );
            Ok(overlay)
        }
        Thumb::Loading => {
            painter.rect_filled(rect, 2.0, ui.visuals().faint_bg_color);
            Ok(false)
        }
        Thumb::Failed(reason) => {
            painter.rect_filled(rect, 2.0, ui.visuals().extreme_bg_color);
            painter.text(
                rect.center(),
                Align2::CENTER_CENTER,
                "unreadable",
                FontId::proportional(10.0),
                MISMATCH,
            );
            Err(reason.to_string())
        }
    }
}

/// Lays out tiles left to right, wrapping; returns the index of a clicked tile.
pub fn tile_row(ui: &mut Ui, thumbs: &mut Thumbnails, tiles: &[Tile], zoom: f32) -> Option<usize> {
    let mut clicked = None;
    ui.horizontal_wrapped(|ui| {
        for (i, tile) in tiles.iter().enumerate() {
            if show_tile(ui, thumbs, tile, zoom).clicked() {
                clicked = Some(i);
            }
        }
    });
    clicked
}

/// `text` cut to its last `max` characters behind an ellipsis (file names differ at the end).
fn shorten(text: &str, max: usize) -> String {
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= max {
        return text.to_string();
    }
    let tail: String = chars[chars.len() + 1 - max.max(1)..].iter().collect();
    format!("…{tail}")
}

#[cfg(test)]
mod tests {
    use super::shorten;

    #[test]
    fn long_captions_keep_their_end() {
        assert_eq!(shorten("abcdefghij", 5), "…ghij");
        assert_eq!(shorten("abc", 5), "abc");
    }
}
