//! How the views write numbers and names: cameras, distances, percentages, query outcomes,
//! file names.

use std::path::Path;

use crate::eval::QueryOutcome;

/// Camera number as shown (Market-1501 file names count cameras from 1).
pub fn camera_label(camid: i64) -> String {
    format!("c{}", camid + 1)
}

/// A distance with four significant digits.
pub fn distance_text(d: f32) -> String {
    let digits = (3 - d.abs().max(1e-3).log10().floor() as i32).clamp(0, 4) as usize;
    format!("{d:.digits$}")
}

/// A fraction as a percentage with one decimal.
pub fn percent(value: f64) -> String {
    format!("{:.1}%", value * 100.0)
}

/// A feature drift (1 − cos) in scientific notation with three digits: `1.23e-5`.
pub fn drift_text(drift: f64) -> String {
    format!("{drift:.2e}")
}

/// "AP 12.3% · first hit at rank 4 · 3 true matches", or why the query is not scored.
pub fn outcome_text(outcome: Option<QueryOutcome>) -> String {
    match outcome {
        Some(o) => format!(
            "AP {} · first hit at rank {} · {} true matches",
            percent(o.ap),
            o.first_hit + 1,
            o.relevant
        ),
        None => "no true match in the gallery (not scored)".into(),
    }
}

/// "AP  12.3%  hit@4" for a query list (fixed width), or "no match in gallery".
pub fn outcome_cell(outcome: Option<QueryOutcome>) -> String {
    match outcome {
        Some(o) => format!("AP {:5.1}%  hit@{}", o.ap * 100.0, o.first_hit + 1),
        None => "no match in gallery".into(),
    }
}

/// The file name of `path` (the whole path when it has none).
pub fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_outcomes_read_as_shown() {
        assert_eq!(camera_label(0), "c1");
        assert_eq!(distance_text(0.0), "0.0000");
        assert_eq!(distance_text(12.345_67), "12.35");
        assert_eq!(percent(0.4834), "48.3%");
        let o = QueryOutcome {
            ap: 0.5,
            inp: 0.25,
            first_hit: 3,
            relevant: 2,
        };
        assert_eq!(
            outcome_text(Some(o)),
            "AP 50.0% · first hit at rank 4 · 2 true matches"
        );
        assert_eq!(outcome_cell(Some(o)), "AP  50.0%  hit@4");
        assert_eq!(outcome_cell(None), "no match in gallery");
        assert_eq!(file_name(Path::new("a/b.png")), "b.png");
    }
}
