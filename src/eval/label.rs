//! What the protocols know of a sample: its identity and camera.

/// Identity and camera of one sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Label {
    /// Person id.
    pub pid: i64,
    /// Camera id.
    pub camid: i64,
}
