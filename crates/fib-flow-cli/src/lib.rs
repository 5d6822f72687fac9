//! The `fib-flow` command-line program as a library: [`run`] executes a
//! parsed [`Cli`], so tests drive every command without spawning a process.
//! The binary (`src/main.rs`) only parses arguments, sets up logging and
//! turns the result into an exit code.

#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

use std::process::ExitCode;

pub mod cli;
pub mod commands;
mod output;

pub use cli::{BenchArgs, Cli, Command, DemoArgs, Workload};

/// The README's Rust examples, compiled and run as doc tests so they keep
/// up with the API.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;

/// Runs one command. `Ok` carries the exit code (a demo whose tasks did not
/// end as planned exits with 1); `Err` is a failure to report.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match &cli.command {
        Command::Demo(args) => {
            let options = commands::demo::DemoOptions::from_args(&cli.database, args);
            let report = commands::demo::run(&options).await?;
            Ok(if report.as_expected() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Bench(args) => {
            let figures = commands::bench::run(&cli.database, args).await?;
            if args.json {
                for figure in &figures {
                    println!("{}", serde_json::to_string(figure)?);
                }
            } else {
                println!("{}", output::bench_table(&figures));
                if let Some(best) = commands::bench::best_drain(&figures) {
                    println!(
                        "best drain: {:.0} tasks/s at concurrency {}",
                        best.rate,
                        best.concurrency.unwrap_or(0)
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
