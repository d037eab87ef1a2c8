//! The `arena` binary: parses flags and calls the library crates.
#![forbid(unsafe_code)]

mod cli;

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use cli::{Cli, Command};

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
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        match cli.command {
            Command::Demo(args) => {
                let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
                let opts = arena_controller::demo::DemoOptions {
                    arena: std::env::current_exe().context("locating the arena binary")?,
                    http_addr: args.http_addr,
                    models_dir: args.models_dir.unwrap_or_else(|| {
                        std::path::PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                            .join(".cache/arena/models")
                    }),
                    // Two contestants share the cores unless --threads says otherwise.
                    threads_per_worker: cli.threads.unwrap_or((cores / 2).max(1)),
                };
                arena_controller::demo::run(opts).await?
            }
            Command::Leaderboard(args) => {
                let out =
                    arena_controller::ratings::run_cli(args.source(), args.options(), args.format)
                        .await?;
                print!("{out}");
            }
            Command::Export(args) => {
                let store = arena_store::connect(&args.database_url()).await?;
                let mut out: Box<dyn std::io::Write + Send> = match &args.output {
                    Some(path) => Box::new(std::io::BufWriter::new(
                        std::fs::File::create(path)
                            .with_context(|| format!("cannot create {}", path.display()))?,
                    )),
                    None => Box::new(std::io::BufWriter::new(std::io::stdout())),
                };
                let n =
                    arena_store::export::export(&*store, args.format, args.all, &mut *out).await?;
                eprintln!("arena export: {n} rows");
            }
            Command::Controller(args) => {
                arena_controller::run::run_controller(args.options()).await?
            }
            Command::Worker(args) => arena_worker::run::run_worker(args.options()).await?,
            Command::Generate(args) => {
                let mut stdout = std::io::stdout();
                arena_worker::run::generate(args.options(), &mut stdout).await?
            }
            Command::Tokenize(args) => {
                let json = arena_worker::run::tokenize(&args.model, &args.text, args.add_special)?;
                println!("{json}");
            }
            Command::Bench(cli::BenchCommand::Controller(args)) => {
                let tiny = std::env::temp_dir().join(format!("arena-bench-{}", std::process::id()));
                let model = match args.model {
                    Some(m) => m,
                    None => {
                        std::fs::create_dir_all(&tiny)?;
                        let path = tiny.join("tiny-chat.gguf");
                        arena_worker::model::tiny_gguf::write_tiny_gguf(
                            &path,
                            arena_worker::model::tiny_gguf::VocabKind::Gpt2,
                            1,
                        )?;
                        path
                    }
                };
                let opts = arena_controller::bench::BenchOptions {
                    arena: std::env::current_exe().context("locating the arena binary")?,
                    model,
                    clients: args.clients,
                    requests: args.requests,
                    max_tokens: args.max_tokens,
                    think_ms: args.think_ms,
                    paired: args.paired,
                };
                let report = arena_controller::bench::run(&opts).await;
                let _ = std::fs::remove_dir_all(&tiny);
                let report = report?;
                if args.json {
                    println!("{}", serde_json::to_string(&report)?);
                } else {
                    print!("{}", report.table());
                }
            }
            Command::Bench(cli::BenchCommand::Leaderboard(args)) => {
                use arena_ratings::bench;
                if let Some(path) = &args.write {
                    bench::write_battles(path, args.battles, args.models, args.seed)?;
                    println!(
                        "wrote {} battles among {} models to {}",
                        args.battles,
                        args.models,
                        path.display()
                    );
                } else {
                    let opts = bench::BenchOptions {
                        battles: args.battles,
                        models: args.models,
                        bootstrap_rounds: args.bootstrap,
                        seed: args.seed,
                    };
                    let report = tokio::task::spawn_blocking(move || bench::run(&opts)).await??;
                    if args.json {
                        println!("{}", serde_json::to_string_pretty(&report)?);
                    } else {
                        print!("{}", bench::render(&report));
                    }
                }
            }
            Command::Bench(cli::BenchCommand::Worker(args)) => {
                let opts = arena_worker::bench::BenchOptions {
                    prompt_lens: args.prompt_lens,
                    decode_tokens: args.decode_tokens,
                    concurrency: args.concurrency,
                    repeats: args.repeats,
                };
                let report = tokio::task::spawn_blocking(move || {
                    arena_worker::bench::run(&args.model, &opts)
                })
                .await??;
                if args.json {
                    println!("{}", serde_json::to_string(&report)?);
                } else {
                    println!("model: {}  threads: {}", report.model, report.threads);
                    for m in &report.measures {
                        println!("{:<45} {:>9.1} tok/s", m.name, m.tokens_per_s);
                    }
                    println!("{:<45} {:>9.1} MiB", "peak RSS", report.peak_rss_mib);
                }
            }
        }
        Ok(())
    })
}
