//! Times the leaderboard's ratings on synthetic battles until `arena bench leaderboard`
//! exists: `cargo run --release -p arena-controller --example bench_leaderboard --
//! [--battles 1000000] [--models 100] [--bootstrap 100] [--seed 1] [--write FILE] [--json]`.
//!
//! `--write FILE` (`.csv` or `.jsonl`) writes the same battles for
//! `scripts/bench-leaderboard-fastchat.py` instead of timing; `--read FILE [--out JSON]` times
//! reading a battles file and computing its leaderboard (FastChat's options), and writes it.

use std::path::PathBuf;
use std::process::ExitCode;

use std::time::Instant;

use arena_controller::leaderboard::bench::{run, write_battles, BenchOptions};
use arena_controller::leaderboard::{compute, Aggregate, RatingOptions};

fn main() -> ExitCode {
    match main_inner() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench_leaderboard: {e}");
            ExitCode::FAILURE
        }
    }
}

fn main_inner() -> Result<(), String> {
    let mut opts = BenchOptions::default();
    let (mut write, mut read, mut out, mut json) = (None, None, None, false);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        let number = |v: String| v.parse::<u64>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--battles" => opts.battles = number(value()?)?,
            "--models" => opts.models = number(value()?)? as usize,
            "--bootstrap" => opts.bootstrap_rounds = number(value()?)? as usize,
            "--seed" => opts.seed = number(value()?)?,
            "--write" => write = Some(PathBuf::from(value()?)),
            "--read" => read = Some(PathBuf::from(value()?)),
            "--out" => out = Some(PathBuf::from(value()?)),
            "--json" => json = true,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if let Some(path) = write {
        write_battles(&path, opts.battles, opts.models, opts.seed).map_err(|e| e.to_string())?;
        println!(
            "wrote {} battles among {} models to {}",
            opts.battles,
            opts.models,
            path.display()
        );
        return Ok(());
    }
    if let Some(path) = read {
        let t = Instant::now();
        let (agg, report) = Aggregate::from_file(&path, false).map_err(|e| e.to_string())?;
        let read_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let rating = RatingOptions {
            bootstrap_rounds: opts.bootstrap_rounds,
            ..RatingOptions::fastchat(&agg)
        };
        let board = compute(&agg, &rating).map_err(|e| e.to_string())?;
        let compute_s = t.elapsed().as_secs_f64();
        println!(
            "read {} battles ({} bad) in {read_s:.3} s, compute() with {} rounds in {compute_s:.3} s",
            report.rows, report.bad_total, rating.bootstrap_rounds
        );
        if let Some(out) = out {
            let text = serde_json::to_string(&board).map_err(|e| e.to_string())?;
            std::fs::write(&out, text).map_err(|e| format!("{}: {e}", out.display()))?;
        }
        return Ok(());
    }
    let r = run(&opts).map_err(|e| e.to_string())?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&r).map_err(|e| e.to_string())?
        );
    } else {
        println!(
            "{} battles, {} models, {} rounds, {} threads\n\
             generate {:.3} s (not counted)\naggregate {:.3} s (incl. online Elo; Elo alone {:.3} s)\n\
             BT fit {:.4} s\nbootstrap {:.3} s\ntotal {:.3} s (compute() {:.3} s)\npeak RSS {} MiB\n\
             max rating error vs truth {:.1}",
            r.options.battles, r.options.models, r.options.bootstrap_rounds, r.threads,
            r.generate_s, r.aggregate_s, r.elo_s, r.bt_s, r.bootstrap_s, r.total_s, r.compute_s,
            r.peak_rss_mib.map_or("?".into(), |m| format!("{m:.0}")), r.max_rating_error
        );
    }
    Ok(())
}
