//! `vypusk-update`: checks, downloads, verifies, installs and rolls back releases from a vypusk
//! server (SPEC §6). It believes nothing the server says before the answer's signature checks
//! out against the pinned key, and nothing it downloads before size, md5 and sha256 match.

mod cli;
mod commands;
mod digest;
mod download;
mod fail;
mod http;
mod state;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command, Settings};
use crate::fail::Failure;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.opts.json;
    let name = cli.command.name();
    let outcome = Settings::load(&cli.opts).and_then(|settings| match &cli.command {
        Command::Check { exit_code } => commands::check(&settings, *exit_code),
        Command::Download { version } => commands::download(&settings, version.as_deref()),
        Command::Install { version } => commands::install(&settings, version.as_deref()),
        Command::Rollback => commands::rollback(&settings),
        Command::Status => commands::status(&settings),
    });
    match outcome {
        Ok(out) => {
            if json {
                println!("{}", out.json);
            } else {
                print!("{}", out.text);
            }
            exit(out.code)
        }
        Err(Failure { code, message }) => {
            eprintln!("vypusk-update {name}: {message}");
            if json {
                println!(
                    "{}",
                    serde_json::json!({"command": name, "error": message, "exit_code": code})
                );
            }
            exit(code)
        }
    }
}

fn exit(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
