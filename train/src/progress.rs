//! Progress of a training run: a bar with the loss, tokens/s and ETA on a terminal, and a
//! plain line every half minute where stderr is a log file (nohup, CI), where a bar draws
//! nothing.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// How often a log line is written when stderr is not a terminal.
const LOG_EVERY: Duration = Duration::from_secs(30);

/// Reports optimizer steps as they finish.
pub struct Progress {
    bar: ProgressBar,
    log: bool,
    total: usize,
    start: usize,
    started: Instant,
    last_line: Instant,
}

impl Progress {
    /// A report of steps `start..total`, shown when `show`.
    pub fn new(show: bool, start: usize, total: usize) -> Self {
        let terminal = std::io::stderr().is_terminal();
        let bar = if show && terminal {
            let bar = ProgressBar::new(total as u64);
            if let Ok(style) = ProgressStyle::with_template(
                "{elapsed_precise} [{bar:30}] step {pos}/{len} {msg} (ETA {eta})",
            ) {
                bar.set_style(style);
            }
            bar.set_position(start as u64);
            bar
        } else {
            ProgressBar::hidden()
        };
        Self {
            bar,
            log: show && !terminal,
            total,
            start,
            started: Instant::now(),
            last_line: Instant::now(),
        }
    }

    /// Step `done` (counted from 1) finished with mean loss `loss`, at `tokens_per_s`.
    pub fn step(&mut self, done: usize, loss: f64, tokens_per_s: f64) {
        let msg = format!("loss {loss:.4}, {tokens_per_s:.0} tok/s");
        self.bar.set_message(msg.clone());
        self.bar.set_position(done as u64);
        if self.log && (self.last_line.elapsed() >= LOG_EVERY || done == self.total) {
            self.last_line = Instant::now();
            let per_step = self.started.elapsed().as_secs_f64() / (done - self.start) as f64;
            let eta = per_step * (self.total - done) as f64;
            eprintln!(
                "step {done}/{}: {msg}, about {:.0} min left",
                self.total,
                eta / 60.0
            );
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
