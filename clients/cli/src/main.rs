//! `prosodia`: the command-line client. It runs the feature front end over files and folders
//! (`prosodia features`) and talks to a running server (`prosodia classify`, `prosodia
//! stream`); `models` is still to come. `features --plot` and `classify --plot` draw one file's
//! analysis to a PNG (see `plot`).

mod features;
mod plot;
mod remote;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Prosodia: speech emotion recognition from audio alone.
#[derive(Debug, Parser)]
#[command(name = "prosodia", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Extract the 46 utterance features (and optionally frame features) from audio files.
    Features(features::Args),
    /// Classify audio files on a running prosodia-server (one JSON line per file).
    Classify(remote::ClassifyArgs),
    /// Stream one audio file to a running prosodia-server as raw PCM, printing window,
    /// utterance and summary results as JSON lines.
    Stream(remote::StreamArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Features(args) => features::run(args),
        Command::Classify(args) => remote::classify(args),
        Command::Stream(args) => remote::stream(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("prosodia: {e:#}");
            ExitCode::from(2)
        }
    }
}
