//! The `arena` binary: sets up logging and the runtime, and hands each subcommand to its
//! file in `cli/`, which calls the library crates.
#![forbid(unsafe_code)]

mod cli;
mod shutdown;

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use cli::{Cli, Command};
use shutdown::shutdown_signal;

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line a person can act on, whatever RUST_BACKTRACE says.
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&cli.log).context("bad --log filter")?,
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, not in files and pipes.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    // Before the runtime starts any thread.
    arena_worker::generate::engine::fix_thread_count(cli.threads);
    arena_worker::model::alloc::keep_freed_buffers();
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let threads = cli.threads;
    runtime.block_on(async move {
        match cli.command {
            Command::Demo(args) => args.run(threads, shutdown_signal()).await,
            Command::Controller(args) => args.run(shutdown_signal()).await,
            Command::Worker(args) => args.run(shutdown_signal()).await,
            Command::Generate(args) => args.run().await,
            Command::Tokenize(args) => args.run(),
            Command::Leaderboard(args) => args.run().await,
            Command::Export(args) => args.run().await,
            Command::Eval(command) => command.run().await,
            Command::Train(command) => command.run().await,
            Command::Bench(command) => command.run().await,
        }
    })
}
