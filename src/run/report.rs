//! The report folder of a finished run: `metrics.json`, `per_query.csv`, `cmc.png` /
//! `cmc.svg` (with earlier runs' curves overlaid), `ranked/` (one ranked-list figure per
//! selected query) and `worst.png` (the worst queries on one sheet); with activation maps, the
//! figures' images are overlaid with where the run's network looks.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;

use image::RgbImage;

use super::Run;
use super::network_maps::NetworkMaps;
use crate::data::image::Preprocess;
use crate::eval::ranked_list;
use crate::output_dir::{OutputDir, OutputError};
use crate::report::cmc_plot::write_cmc_plots;
use crate::report::ranklist::{
    RankedItem, RankedQuery, THUMB_H, THUMB_W, thumbnail, write_ranked_png,
};
use crate::report::{MetricsFile, write_per_query_csv};

/// Queries shown on the worst-queries sheet.
const WORST_SHEET_QUERIES: usize = 12;
/// Gallery images per row on the worst-queries sheet.
const WORST_SHEET_TOPK: usize = 10;
/// Queries drawn for [`VisrankQueries::Worst`].
const WORST_DEFAULT: usize = 20;
/// Ranked-list figures drawn per round of activation maps, so that few overlays are held.
const FIGURES_PER_ROUND: usize = 16;

/// Which queries get a ranked-list figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VisrankQueries {
    /// The first N queries.
    First(usize),
    /// Every query.
    All,
    /// The queries with the lowest AP.
    Worst,
}

impl FromStr for VisrankQueries {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "all" => Ok(VisrankQueries::All),
            "worst" => Ok(VisrankQueries::Worst),
            n => n
                .parse()
                .map(VisrankQueries::First)
                .map_err(|_| format!("expected a number, `all` or `worst`, got `{s}`")),
        }
    }
}

/// What goes into a report folder besides the run's own results.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportOptions {
    /// Queries that get a ranked-list figure in `ranked/`.
    pub visrank_queries: VisrankQueries,
    /// Gallery images per ranked-list figure.
    pub visrank_topk: usize,
    /// Earlier runs' metrics, drawn on the same CMC chart.
    pub compare: Vec<MetricsFile>,
    /// Draw the figures' images with their activation-map overlays.
    pub actmaps: bool,
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions {
            visrank_queries: VisrankQueries::First(20),
            visrank_topk: 10,
            compare: Vec::new(),
            actmaps: false,
        }
    }
}

/// Why a report folder could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A file or folder could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file or folder.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A figure could not be drawn.
    #[error("cannot draw {}: {reason}", path.display())]
    Figure {
        /// The figure file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// No query has a true match, so there are no worst queries to show.
    #[error("no valid query to put on the worst-queries sheet")]
    NoValidQuery,
    /// Activation maps were asked of a run without a network.
    #[error("activation maps need a network; the colour-histogram run has none")]
    NoNetwork,
    /// The activation maps could not be computed.
    #[error("activation maps: {0}")]
    Actmaps(String),
    /// The folder, or a file in it, is not reidscope's to write.
    #[error(transparent)]
    Output(#[from] OutputError),
}

/// Writes the report of `run` into `dir` (created if needed); `on_figure(done, total)` is
/// called as ranked-list figures are drawn (from worker threads).
pub fn write_report(
    run: &Run,
    dir: &Path,
    options: &ReportOptions,
    on_figure: &(dyn Fn(usize, usize) + Sync),
) -> Result<(), ReportError> {
    let mut folder = OutputDir::open(dir)?;
    let [metrics, per_query, cmc_png, cmc_svg, worst] = [
        "metrics.json",
        "per_query.csv",
        "cmc.png",
        "cmc.svg",
        "worst.png",
    ]
    .map(|name| folder.claim(name));
    let (metrics, per_query, cmc_png, cmc_svg, worst) =
        (metrics?, per_query?, cmc_png?, cmc_svg?, worst?);
    folder.save()?;
    run.metrics.write(&metrics).map_err(write_error(&metrics))?;
    let names: Vec<String> = run
        .queries
        .iter()
        .map(|s| s.path.display().to_string())
        .collect();
    write_per_query_csv(&per_query, &run.evaluation, &run.query_labels, Some(&names))
        .map_err(write_error(&per_query))?;
    let mut runs = vec![run.metrics.clone()];
    runs.extend(options.compare.iter().cloned());
    write_cmc_plots(&cmc_png, &cmc_svg, &runs).map_err(|reason| ReportError::Figure {
        path: cmc_png,
        reason,
    })?;
    let maps = if options.actmaps {
        Some(NetworkMaps::of_run(&run.spec).ok_or(ReportError::NoNetwork)?)
    } else {
        None
    };
    let figures = Figures { run, maps };
    figures.write_ranked(&folder, options, on_figure)?;
    figures.write_worst(&worst)
}

/// Ranked-list figures of a run.
struct Figures<'a> {
    run: &'a Run,
    /// The run's network, when the images are drawn with their activation maps.
    maps: Option<NetworkMaps>,
}

/// The images of some figures as they are drawn: activation-map overlays where computed,
/// plain thumbnails otherwise.
struct Tiles(HashMap<PathBuf, RgbImage>);

impl Tiles {
    fn tile(&self, path: &Path) -> RgbImage {
        self.0.get(path).cloned().unwrap_or_else(|| thumbnail(path))
    }
}

impl Figures<'_> {
    /// The tiles of the images in `rows`: their overlays, if the figures have maps.
    fn tiles(&self, rows: &[RankedQuery]) -> Result<Tiles, ReportError> {
        let Some(maps) = &self.maps else {
            return Ok(Tiles(HashMap::new()));
        };
        let mut paths: Vec<PathBuf> = rows
            .iter()
            .flat_map(|row| std::iter::once(&row.path).chain(row.items.iter().map(|i| &i.path)))
            .cloned()
            .collect();
        paths.sort();
        paths.dedup();
        let computed = maps
            .maps(&paths, self.run.spec.batch)
            .map_err(ReportError::Actmaps)?;
        let size = Preprocess {
            height: THUMB_H,
            width: THUMB_W,
        };
        let overlays = computed
            .kept
            .into_iter()
            .zip(computed.maps)
            .filter_map(|(path, map)| {
                let pixels = size.resize(&map.overlay()).ok()?;
                Some((path, RgbImage::from_raw(THUMB_W, THUMB_H, pixels)?))
            })
            .collect();
        Ok(Tiles(overlays))
    }

    /// The ranked list of query `q`: its top `k` gallery images, junk removed.
    fn ranked(&self, q: usize, k: usize) -> RankedQuery {
        let run = self.run;
        let query = &run.queries[q];
        let mut row = Vec::new();
        run.distances.rows(q..q + 1, &mut row);
        let items = ranked_list(&row, run.query_labels[q], &run.gallery_labels, k, false)
            .into_iter()
            .map(|entry| RankedItem {
                path: run.gallery[entry.gallery].path.clone(),
                rank: entry.rank.unwrap_or(0),
                distance: entry.distance,
                matches: entry.matches,
            })
            .collect();
        let caption = match run.evaluation.per_query[q] {
            Some(o) => format!("AP {:.1}%", o.ap * 100.0),
            None => "no match".into(),
        };
        RankedQuery {
            path: query.path.clone(),
            pid: query.pid,
            camid: query.camid,
            caption,
            items,
        }
    }

    /// One figure per selected query in the report's `ranked/` (replacing the figures of an
    /// earlier run there, and only those).
    fn write_ranked(
        &self,
        report: &OutputDir,
        options: &ReportOptions,
        on_figure: &(dyn Fn(usize, usize) + Sync),
    ) -> Result<(), ReportError> {
        let queries = self.run.queries.len();
        let selected: Vec<usize> = match options.visrank_queries {
            VisrankQueries::All => (0..queries).collect(),
            VisrankQueries::First(n) => (0..queries.min(n)).collect(),
            VisrankQueries::Worst => self
                .run
                .evaluation
                .worst_first()
                .into_iter()
                .take(WORST_DEFAULT)
                .collect(),
        };
        let k = options.visrank_topk;
        if selected.is_empty() || k == 0 {
            return Ok(());
        }

        let mut dir = report.subdir("ranked")?;
        dir.remove_own(|name| name.ends_with(".png"))?;
        let paths = selected
            .iter()
            .map(|&q| {
                let stem = self.run.queries[q]
                    .path
                    .file_stem()
                    .unwrap_or_default()
                    .to_string_lossy();
                dir.claim(&format!("{q:05}_{stem}.png"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        dir.save()?;
        let done = AtomicUsize::new(0);
        for (queries, paths) in selected
            .chunks(FIGURES_PER_ROUND)
            .zip(paths.chunks(FIGURES_PER_ROUND))
        {
            let rows: Vec<RankedQuery> = queries.iter().map(|&q| self.ranked(q, k)).collect();
            let tiles = self.tiles(&rows)?;
            rows.par_iter().zip(paths).try_for_each(|(row, path)| {
                write_ranked_png(path, std::slice::from_ref(row), &|p| tiles.tile(p)).map_err(
                    |reason| ReportError::Figure {
                        path: path.clone(),
                        reason,
                    },
                )?;
                on_figure(done.fetch_add(1, Ordering::Relaxed) + 1, selected.len());
                Ok::<(), ReportError>(())
            })?;
        }
        Ok(())
    }

    /// The worst queries by AP on one sheet.
    fn write_worst(&self, path: &Path) -> Result<(), ReportError> {
        let evaluation = &self.run.evaluation;
        let rows: Vec<RankedQuery> = evaluation
            .worst_first()
            .into_iter()
            .filter(|&q| evaluation.per_query[q].is_some())
            .take(WORST_SHEET_QUERIES)
            .map(|q| self.ranked(q, WORST_SHEET_TOPK))
            .collect();
        if rows.is_empty() {
            return Err(ReportError::NoValidQuery);
        }
        let tiles = self.tiles(&rows)?;
        write_ranked_png(path, &rows, &|p| tiles.tile(p)).map_err(|reason| ReportError::Figure {
            path: path.to_path_buf(),
            reason,
        })
    }
}

/// The error of a failed write (or listing, or removal) of `path`.
fn write_error(path: &Path) -> impl FnOnce(std::io::Error) -> ReportError {
    let path = path.to_path_buf();
    move |source| ReportError::Write { path, source }
}
