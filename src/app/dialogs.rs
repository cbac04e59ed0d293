//! File dialogs the views share.

use std::path::PathBuf;

/// A save dialog proposing the file `name`, showing `kind` files (`extension`).
pub fn save_as(name: &str, kind: &str, extension: &str) -> Option<PathBuf> {
    rfd::FileDialog::new()
        .set_file_name(name)
        .add_filter(kind, &[extension])
        .save_file()
}
