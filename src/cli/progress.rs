//! Progress bars on stderr: images extracted, a run's stages, figures drawn.

use indicatif::{ProgressBar, ProgressStyle};

use reidscope::run::Stage;

/// A bar with `template` over `total` items.
fn bar(total: usize, template: &str) -> ProgressBar {
    ProgressBar::new(total as u64)
        .with_style(ProgressStyle::with_template(template).expect("valid progress template"))
}

/// An extraction progress bar.
pub fn image_bar(total: usize) -> ProgressBar {
    bar(total, "{bar:40} {pos}/{len} images, {msg} ETA {eta}")
}

/// A bar over ranked-list figures.
pub fn figure_bar() -> ProgressBar {
    bar(0, "{bar:40} {pos}/{len} ranked lists drawn")
}

/// The bars of a run's stages: extraction, then a spinner while distances (and re-ranking
/// neighbourhoods) are computed, then the queries scored.
pub struct StageBars {
    images: ProgressBar,
    distances: ProgressBar,
    queries: ProgressBar,
    rerank: bool,
}

impl StageBars {
    /// Bars for a run; `rerank` names the distance stage.
    pub fn new(rerank: bool) -> StageBars {
        StageBars {
            images: image_bar(0),
            distances: ProgressBar::hidden(),
            queries: bar(0, "{bar:40} {pos}/{len} queries ranked, ETA {eta}"),
            rerank,
        }
    }

    /// Shows `stage`.
    pub fn show(&mut self, stage: Stage) {
        match stage {
            Stage::Preparing => {}
            Stage::Extracting(p) => {
                self.images.set_length(p.total as u64);
                self.images.set_position(p.done as u64);
                self.images
                    .set_message(format!("{:.1} img/s", p.images_per_s));
            }
            Stage::Distances => {
                self.images.finish_and_clear();
                self.distances = ProgressBar::new_spinner().with_message(if self.rerank {
                    "computing neighbourhoods for re-ranking"
                } else {
                    "preparing features"
                });
                self.distances
                    .enable_steady_tick(std::time::Duration::from_millis(120));
            }
            Stage::Scoring(done, total) => {
                self.distances.finish_and_clear();
                self.queries.set_length(total as u64);
                self.queries.set_position(done as u64);
            }
        }
    }

    /// Clears every bar.
    pub fn finish(&self) {
        for bar in [&self.images, &self.distances, &self.queries] {
            bar.finish_and_clear();
        }
    }
}
