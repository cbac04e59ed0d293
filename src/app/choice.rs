//! A labelled drop-down: the label first, then the box, announced under the label.

use eframe::egui::{self, Ui};

/// Shows `label` and a drop-down of `options` (value, text) that sets `value`; `width` is the
/// box width in points.
pub fn choice<T: PartialEq + Clone>(
    ui: &mut Ui,
    label: &str,
    value: &mut T,
    options: impl IntoIterator<Item = (T, String)>,
    width: f32,
) {
    let options: Vec<(T, String)> = options.into_iter().collect();
    let selected = options
        .iter()
        .find(|(v, _)| v == value)
        .map_or_else(String::new, |(_, text)| text.clone());
    let label = ui.label(label);
    let response = egui::ComboBox::from_id_salt(label.id)
        .width(width)
        .selected_text(selected)
        .show_ui(ui, |ui| {
            for (option, text) in options {
                ui.selectable_value(value, option, text);
            }
        })
        .response;
    response.labelled_by(label.id);
}
