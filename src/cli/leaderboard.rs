//! `arena leaderboard`: ratings from the store or a battles file.

use std::path::PathBuf;

use arena_controller::site::leaderboard::{self, OutputFormat, Source};
use arena_ratings::{RatingOptions, Regularization};
use clap::Args;

/// Flags of `arena leaderboard`.
#[derive(Args, Debug)]
pub struct LeaderboardArgs {
    /// The arena's database (default: sqlite://$ARENA_HOME/arena.db); its counted anonymous
    /// votes are the battles.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// A battles file instead: JSONL/JSON or CSV with model_a, model_b, winner (+ tstamp,
    /// anony, turn), e.g. the public Chatbot Arena dataset.
    #[arg(long)]
    pub battles: Option<PathBuf>,
    /// Stop at the first bad row of the file instead of skipping (and listing) bad rows.
    #[arg(long)]
    pub strict: bool,
    /// Bootstrap rounds for the 95% intervals.
    #[arg(long, default_value_t = 100)]
    pub bootstrap: usize,
    /// Seed of the bootstrap.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Shift Bradley-Terry ratings so MODEL has RATING, e.g. llama-13b=800.
    #[arg(long, value_parser = leaderboard::parse_anchor)]
    pub anchor: Option<(String, f64)>,
    /// Plain maximum likelihood instead of FastChat's L2-regularised fit (C = 1).
    #[arg(long)]
    pub mle: bool,
    /// Models with fewer battles are flagged.
    #[arg(long, default_value_t = 30)]
    pub min_battles: u64,
    /// table, json (one array of row objects) or csv.
    #[arg(long, default_value = "table")]
    pub format: OutputFormat,
}

impl LeaderboardArgs {
    /// Computes and prints the leaderboard.
    pub async fn run(self) -> anyhow::Result<()> {
        let out = leaderboard::run_cli(self.source(), self.options(), self.format).await?;
        print!("{out}");
        Ok(())
    }

    /// Where the battles come from.
    fn source(&self) -> Source {
        match &self.battles {
            Some(path) => Source::File {
                path: path.clone(),
                strict: self.strict,
            },
            None => Source::Database(super::database_url_or_default(self.database_url.clone())),
        }
    }

    /// The rating options.
    fn options(&self) -> RatingOptions {
        RatingOptions {
            bootstrap_rounds: self.bootstrap,
            seed: self.seed,
            anchor: self.anchor.clone(),
            regularization: if self.mle {
                Regularization::None
            } else {
                Regularization::L2 { c: 1.0 }
            },
            min_battles: self.min_battles,
        }
    }
}
