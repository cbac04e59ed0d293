//! The `reidscope` command line: thin front end over the library.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cli;

#[derive(Parser)]
#[command(
    name = "reidscope",
    version,
    about = "Person re-identification: extract features, evaluate, inspect",
    after_help = "Without a command, the app opens on the bundled demo dataset."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Largest image decoded, in pixels (width x height); a larger one is skipped with a
    /// reason, read from its header.
    #[arg(long, global = true, default_value_t = reidscope::data::image::DEFAULT_MAX_PIXELS)]
    max_pixels: u64,
    /// Memory for images being decoded at once, in MiB: decodes beyond it wait for each
    /// other, whatever the batch size and thread count (a larger image is decoded alone).
    #[arg(long, global = true, default_value_t = reidscope::data::decode_budget::DEFAULT_DECODE_MEMORY_MIB)]
    decode_memory: u64,
    /// Let a dataset's list files (a CSV, MSMT17's lists) name images outside its folder.
    #[arg(long, global = true)]
    allow_outside_root: bool,
    /// Threads of every parallel part (decoding, the CPU backend, distances, the app's image
    /// workers) [default: all cores]; `bench` takes a list (1,2) and measures each.
    #[arg(long, global = true, value_delimiter = ',')]
    threads: Vec<usize>,
}

#[derive(Subcommand)]
enum Command {
    /// The desktop app (the default): browse a dataset, inspect ranked lists, compare runs.
    Gui(Box<cli::gui::GuiArgs>),
    /// Activation maps of every image in a folder: figures and a .npy file of the maps.
    Actmap(cli::actmap::ActmapArgs),
    /// Extract eval-mode features of every image in a folder into a .npy file.
    Extract(cli::extract::ExtractArgs),
    /// Metrics (CMC, mAP, mINP) of saved query/gallery features and labels.
    Metrics(cli::metrics::MetricsArgs),
    /// Evaluate a model on a dataset and write a report folder (metrics, CMC plot, ranked lists).
    Eval(cli::eval::EvalCommandArgs),
    /// Write a model's weights as a Torchreid .pth checkpoint (f32 or f16).
    Export(cli::export::ExportArgs),
    /// Train or fine-tune a network with Torchreid's softmax + triplet recipe.
    Train(Box<cli::train::TrainArgs>),
    /// Write the synthetic demo dataset (Market-1501 layout) for a seed.
    DemoData(cli::demo::DemoDataArgs),
    /// Measure inference throughput (images/s), or with --metrics the evaluation time.
    Bench(cli::bench::BenchArgs),
    /// List compute devices and whether they support f16.
    Devices,
}

/// glibc: one arena, blocks up to 32 MiB from the heap, no trimming — tensor buffers are then
/// reused instead of being mapped, faulted in and unmapped for every layer.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune_allocator() {
    unsafe extern "C" {
        fn mallopt(param: i32, value: i32) -> i32;
    }
    const M_TRIM_THRESHOLD: i32 = -1;
    const M_MMAP_THRESHOLD: i32 = -3;
    const M_ARENA_MAX: i32 = -8;
    // SAFETY: mallopt only changes allocator parameters; called before any thread starts.
    unsafe {
        mallopt(M_ARENA_MAX, 1);
        mallopt(M_MMAP_THRESHOLD, 32 << 20);
        mallopt(M_TRIM_THRESHOLD, i32::MAX);
    }
}

/// Sizes the global thread pool from `--threads` (one number; a list only for `bench`, which
/// makes a pool per entry).
fn use_threads(threads: &[usize], bench: bool) -> Result<(), String> {
    if threads.contains(&0) {
        return Err("--threads must be at least 1".into());
    }
    match threads {
        [] => Ok(()),
        [n] => rayon::ThreadPoolBuilder::new()
            .num_threads(*n)
            .build_global()
            .map_err(|e| format!("cannot start {n} threads: {e}")),
        _ if bench => Ok(()),
        _ => Err("--threads takes one number (only bench takes a list)".into()),
    }
}

fn main() -> ExitCode {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    tune_allocator();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,wgpu_core=error,wgpu_hal=error,naga=error".into()),
        )
        .init();
    let cli = Cli::parse();
    reidscope::data::image::set_max_pixels(cli.max_pixels);
    reidscope::data::set_allow_outside_root(cli.allow_outside_root);
    reidscope::data::decode_budget::DECODE_BUDGET
        .set_total(cli.decode_memory.saturating_mul(1 << 20));
    let command = cli
        .command
        .or_else(|| Cli::parse_from(["reidscope", "gui"]).command)
        .expect("`gui` is a command");
    if let Err(e) = use_threads(&cli.threads, matches!(command, Command::Bench(_))) {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    let result = match command {
        Command::Gui(args) => cli::gui::run(*args),
        Command::Extract(args) => cli::extract::run(args),
        Command::Actmap(args) => cli::actmap::run(args),
        Command::Metrics(args) => cli::metrics::run(args),
        Command::Eval(args) => cli::eval::run(args),
        Command::Export(args) => cli::export::run(args),
        Command::Train(args) => cli::train::run(*args),
        Command::DemoData(args) => cli::demo::run(args),
        Command::Bench(args) => cli::bench::run(args, &cli.threads),
        Command::Devices => cli::devices::run(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
