//! `reidscope actmap`: where a network looks in each image of a folder, as Torchreid's
//! `visualize_actmap.py` draws it.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result};
use clap::Args;
use rayon::prelude::*;
use reidscope::inspect::actmap::activation_maps;
use reidscope::io::write_npy_f32;
use reidscope::output_dir::OutputDir;
use reidscope::report::actmap_figure::write_actmap_png;

use super::extract::{FolderArgs, FolderRun, write_file_names};
use super::progress::image_bar;

/// The maps of all images, in file-name order.
const MAPS_FILE: &str = "actmaps.npy";
/// The file names of the maps' rows.
const NAMES_FILE: &str = "actmaps.files.txt";

#[derive(Args)]
pub struct ActmapArgs {
    #[command(flatten)]
    folder: FolderArgs,
    /// Output folder: one figure per image (image | map | overlay, <image stem>.png),
    /// actmaps.npy (float32 [N, H, W], the maps scaled to [0, 1]) and actmaps.files.txt (the
    /// file names of its rows).
    #[arg(long)]
    out: PathBuf,
}

/// Runs `reidscope actmap`.
pub fn run(args: ActmapArgs) -> Result<()> {
    let FolderRun {
        preprocess,
        images,
        model,
    } = FolderRun::new(&args.folder)?;
    let mut out = OutputDir::open(&args.out)?;

    let bar = image_bar(images.len());
    let cancel = AtomicBool::new(false);
    let result = activation_maps(
        &model,
        &images,
        preprocess,
        args.folder.inference.batch,
        &mut |done| bar.set_position(done as u64),
        &cancel,
    )?;
    bar.finish_and_clear();
    for skipped in &result.skipped {
        eprintln!("skipped: {skipped}");
    }

    let figures = result
        .kept
        .iter()
        .map(|path| {
            let stem = path.file_stem().unwrap_or_default().to_string_lossy();
            out.claim(&format!("{stem}.png"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let maps_path = out.claim(MAPS_FILE)?;
    let names_path = out.claim(NAMES_FILE)?;
    out.save()?;
    figures
        .par_iter()
        .zip(&result.maps)
        .try_for_each(|(path, map)| write_actmap_png(path, map))
        .map_err(anyhow::Error::msg)?;
    let values: Vec<f32> = result
        .maps
        .iter()
        .flat_map(|m| m.map.iter().copied())
        .collect();
    let map_shape = [preprocess.height as usize, preprocess.width as usize];
    write_npy_f32(&maps_path, &values, &map_shape)
        .with_context(|| format!("cannot write {}", maps_path.display()))?;
    write_file_names(&names_path, &result.kept)?;
    eprintln!(
        "wrote {} activation maps to {} ({} skipped)",
        result.maps.len(),
        args.out.display(),
        result.skipped.len()
    );
    Ok(())
}
