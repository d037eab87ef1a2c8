//! Progress of a long run: a bar on a terminal (indicatif), plain lines on stderr otherwise
//! (a log file or CI gets a line every tenth of the work, not a redrawn bar); and the bounded
//! parallelism every run shares.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::stream::{self, StreamExt};
use indicatif::{ProgressBar, ProgressStyle};

use crate::EvalError;

/// Counts finished items of one run.
#[derive(Debug)]
pub struct Progress {
    label: String,
    total: u64,
    done: AtomicU64,
    bar: Option<ProgressBar>,
    quiet: bool,
}

impl Progress {
    /// A bar when stderr is a terminal, else plain lines; `total` items to do.
    pub fn new(label: &str, total: u64) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(total);
            let style =
                ProgressStyle::with_template("{msg} [{bar:40.cyan/blue}] {pos}/{len} ({eta} left)")
                    .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style.progress_chars("=> "));
            bar.set_message(label.to_string());
            bar
        });
        Self {
            label: label.to_string(),
            total,
            done: AtomicU64::new(0),
            bar,
            quiet: false,
        }
    }

    /// A bar labelled `label`, or [`Progress::hidden`] without one.
    pub fn labelled(label: Option<&str>, total: u64) -> Self {
        match label {
            Some(label) => Self::new(label, total),
            None => Self::hidden(total),
        }
    }

    /// Counts nothing aloud (tests, library use).
    pub fn hidden(total: u64) -> Self {
        Self {
            label: String::new(),
            total,
            done: AtomicU64::new(0),
            bar: None,
            quiet: true,
        }
    }

    /// One more item done.
    pub fn inc(&self) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        match &self.bar {
            Some(bar) => bar.inc(1),
            None if !self.quiet => {
                let step = (self.total / 10).max(1);
                if done.is_multiple_of(step) || done == self.total {
                    eprintln!("{}: {done}/{}", self.label, self.total);
                }
            }
            None => {}
        }
    }

    /// Ends the bar, leaving its last state on screen.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish();
        }
    }
}

/// Runs `work` `parallel` at a time. The first failure ends the run: calls in flight finish
/// (what they store stays), no new one starts, and the failure is the result.
pub(crate) async fn until_first_error<T, F>(
    work: impl Iterator<Item = F>,
    parallel: usize,
) -> Result<Vec<T>, EvalError>
where
    F: std::future::Future<Output = Result<T, EvalError>>,
{
    let results: Vec<Result<T, EvalError>> = stream::iter(work)
        .buffer_unordered(parallel.max(1))
        .scan(false, |failed, r| {
            let stop = *failed;
            *failed |= r.is_err();
            std::future::ready((!stop).then_some(r))
        })
        .collect()
        .await;
    results.into_iter().collect()
}
