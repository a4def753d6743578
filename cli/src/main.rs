//! `transfer-lab`: Transfer Lab's command-line tools.

mod eval;
mod folder;
mod predict;
mod prepare;
mod train;

use clap::{Parser, Subcommand};
use serde::Serialize;
use std::process::ExitCode;

/// Transfer Lab's command-line tools: prepare the assets, then train, evaluate and predict with
/// the same model code as the browser.
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
    /// Run a lesson's training and write the trained-model file.
    Train(train::TrainArgs),
    /// Accuracy, per-class accuracy and confusion matrix of a trained model on labelled photos.
    Eval(eval::EvalArgs),
    /// The most probable classes of photos.
    Predict(predict::PredictArgs),
}

fn print_json(value: &impl Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    match run(Cli::parse().command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // The whole chain of causes on one line, without a backtrace: these are messages
            // for people, not bug reports.
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Prepare(args) => {
            let report = prepare::run(&args)?;
            prepare::print_summary(&report);
        }
        Command::Train(args) => {
            let summary = train::run(&args)?;
            if args.json {
                print_json(&summary)?;
            } else {
                train::print_summary(&summary);
            }
        }
        Command::Eval(args) => {
            let report = eval::run(&args)?;
            if args.json {
                print_json(&report)?;
            } else {
                eval::print_report(&report);
            }
        }
        Command::Predict(args) => {
            let report = predict::run(&args)?;
            if args.json {
                print_json(&report)?;
            } else {
                predict::print_report(&report);
            }
        }
    }
    Ok(())
}
