//! The `reidscope` command line: thin front end over the library.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cli;

#[derive(Parser)]
#[command(
    name = "reidscope",
    version,
    about = "Person re-identification: extract features, evaluate, inspect",
    arg_required_else_help = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Extract eval-mode features of every image in a folder into a .npy file.
    Extract(cli::extract::ExtractArgs),
    /// Metrics (CMC, mAP, mINP) of saved query/gallery features and labels.
    Metrics(cli::metrics::MetricsArgs),
    /// Evaluate a model on a dataset and write a report folder (metrics, CMC plot, ranked lists).
    Eval(cli::eval::EvalCommandArgs),
    /// Write the synthetic demo dataset (Market-1501 layout) for a seed.
    DemoData(cli::demo::DemoDataArgs),
    /// Measure inference throughput (images/s), or with --metrics the evaluation time.
    Bench(cli::bench::BenchArgs),
    /// List compute devices and whether they support f16.
    Devices,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,wgpu_core=error,wgpu_hal=error,naga=error".into()),
        )
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Extract(args) => cli::extract::run(args),
        Command::Metrics(args) => cli::metrics::run(args),
        Command::Eval(args) => cli::eval::run(args),
        Command::DemoData(args) => cli::demo::run(args),
        Command::Bench(args) => cli::bench::run(args),
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
