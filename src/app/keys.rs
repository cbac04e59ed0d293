//! Stepping through an ordered list with the keyboard.

use eframe::egui::{Key, Ui};

/// Moves `selected` within `order` on ←/→ (or ↑/↓) and Home/End, when no text field has
/// focus; returns true if it moved.
pub fn navigate(ui: &Ui, order: &[usize], selected: &mut usize) -> bool {
    if order.is_empty() || ui.ctx().memory(|m| m.focused().is_some()) {
        return false;
    }
    let position = order.iter().position(|&q| q == *selected).unwrap_or(0);
    let target = ui.input(|i| {
        if i.key_pressed(Key::ArrowRight) || i.key_pressed(Key::ArrowDown) {
            Some((position + 1).min(order.len() - 1))
        } else if i.key_pressed(Key::ArrowLeft) || i.key_pressed(Key::ArrowUp) {
            Some(position.saturating_sub(1))
        } else if i.key_pressed(Key::Home) {
            Some(0)
        } else if i.key_pressed(Key::End) {
            Some(order.len() - 1)
        } else {
            None
        }
    });
    match target {
        Some(p) if order[p] != *selected => {
            *selected = order[p];
            true
        }
        _ => false,
    }
}
