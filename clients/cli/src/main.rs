//! `prosodia`: the command-line client. Today it runs the feature front end over files and
//! folders (`prosodia features`); the server issue adds `classify`, `stream` and `models`.

mod features;

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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Features(args) => features::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("prosodia: {e:#}");
            ExitCode::from(2)
        }
    }
}
