//! `transfer-lab`: Transfer Lab's command-line tools.

mod prepare;

use clap::{Parser, Subcommand};

/// Transfer Lab's command-line tools.
#[derive(Debug, Parser)]
#[command(name = "transfer-lab", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Turn the public photos and model files into the web app's git-ignored assets.
    Prepare(prepare::PrepareArgs),
}

fn main() -> anyhow::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    match Cli::parse().command {
        Command::Prepare(args) => {
            let report = prepare::run(&args)?;
            prepare::print_summary(&report);
        }
    }
    Ok(())
}
