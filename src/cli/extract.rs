//! `reidscope extract`: features of every image in a folder into a .npy file.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result, bail};
use clap::Args;
use reidscope::backend::Backend;
use reidscope::data::image::Preprocess;
use reidscope::data::list_images;
use reidscope::features::{ExtractOptions, extract};
use reidscope::io::{write_atomic, write_npy_f32};
use reidscope::models::Model;

use super::args::{InferenceArgs, ModelArgs};
use super::progress::image_bar;

/// A network run over the images of a folder (`extract`, `actmap`).
#[derive(Args)]
pub struct FolderArgs {
    /// The network (--model and --weights are required).
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    pub inference: InferenceArgs,
    /// Folder of .jpg/.jpeg/.png images (not recursive), read in file-name order.
    #[arg(long)]
    images: PathBuf,
}

#[derive(Args)]
pub struct ExtractArgs {
    #[command(flatten)]
    folder: FolderArgs,
    /// Output .npy (float32, [N, D]); the file names of the rows go to <OUT>.files.txt.
    #[arg(long)]
    out: PathBuf,
}

/// A network and the images of a folder, ready for a command that runs one over the other.
pub(super) struct FolderRun {
    /// The network's input size.
    pub preprocess: Preprocess,
    /// The folder's images, in file-name order.
    pub images: Vec<PathBuf>,
    /// The network, on the chosen device.
    pub model: Model,
}

impl FolderRun {
    /// Checks the arguments, lists the folder's images and loads the network.
    pub fn new(args: &FolderArgs) -> Result<Self> {
        args.model.require_weights()?;
        let inference = &args.inference;
        let preprocess = inference.input.preprocess()?;
        let images = folder_images(&args.images)?;
        let backend = Backend::select(inference.device, inference.precision)?;
        let model = args.model.load(&backend)?;
        model
            .architecture()
            .check_input(preprocess.height, preprocess.width)?;
        tracing::info!(device = %backend.description, "{} images", images.len());
        Ok(FolderRun {
            preprocess,
            images,
            model,
        })
    }
}

/// Runs `reidscope extract`.
pub fn run(args: ExtractArgs) -> Result<()> {
    let FolderRun {
        preprocess,
        images,
        model,
    } = FolderRun::new(&args.folder)?;

    let bar = image_bar(images.len());
    let cancel = AtomicBool::new(false);
    let options = ExtractOptions {
        batch_size: args.folder.inference.batch,
        preprocess,
    };
    let result = extract(
        &model,
        &images,
        options,
        &mut |p| {
            bar.set_position(p.done as u64);
            bar.set_message(format!("{:.1} img/s", p.images_per_s));
        },
        &cancel,
    )?;
    bar.finish_and_clear();
    for skipped in &result.skipped {
        eprintln!("skipped: {skipped}");
    }
    write_npy_f32(&args.out, &result.features, &[result.dim])
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    write_file_names(&names_file_path(&args.out), &result.kept)?;
    eprintln!(
        "wrote {} features of dimension {} to {} ({} skipped)",
        result.kept.len(),
        result.dim,
        args.out.display(),
        result.skipped.len()
    );
    Ok(())
}

/// The images directly inside `dir`, in file-name order; an error when there are none.
fn folder_images(dir: &Path) -> Result<Vec<PathBuf>> {
    let images =
        list_images(dir).with_context(|| format!("cannot list images in {}", dir.display()))?;
    if images.is_empty() {
        bail!("{} contains no .jpg/.jpeg/.png files", dir.display());
    }
    Ok(images)
}

/// Writes the file names of `paths`, one per line, to `out`, atomically.
pub(super) fn write_file_names(out: &Path, paths: &[PathBuf]) -> Result<()> {
    write_atomic(out, |w| {
        for path in paths {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            writeln!(w, "{name}")?;
        }
        Ok(())
    })
    .with_context(|| format!("cannot write {}", out.display()))
}

/// `FEATS.npy` → `FEATS.npy.files.txt`.
fn names_file_path(out: &Path) -> PathBuf {
    let mut name = out.as_os_str().to_owned();
    name.push(".files.txt");
    PathBuf::from(name)
}
