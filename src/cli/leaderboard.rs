//! `arena leaderboard`: ratings from the store or a battles file.

use std::path::PathBuf;

use arena_controller::site::catalog::Catalog;
use arena_controller::site::exclusions;
use arena_controller::site::leaderboard::{self, OutputFormat, Source};
use arena_ratings::{Ci, Method, RatingOptions, Regularization, Ties, MIN_PAIR_COUNT};
use clap::{Args, ValueEnum};

/// `--method`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum MethodArg {
    /// LMArena's arena-rank 0.1.1: plain maximum likelihood, no anchor.
    ArenaRank,
    /// FastChat 0.2.36: L2-regularised (C = 1), or plain with --mle.
    Fastchat,
}

/// `--ties`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum TiesArg {
    /// A tie is half a win each way (FastChat, arena-rank).
    HalfWin,
    /// Davidson's model: a tie parameter fitted beside the ratings.
    Davidson,
}

/// `--ci`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum CiArg {
    /// arena-rank's sandwich estimator.
    Sandwich,
    /// Percentiles over --bootstrap refits on resampled battles.
    Bootstrap,
}

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
    /// The Bradley-Terry fit.
    #[arg(long, value_enum, default_value = "arena-rank")]
    pub method: MethodArg,
    /// How the 95% intervals are computed.
    #[arg(long, value_enum, default_value = "sandwich")]
    pub ci: CiArg,
    /// Reweight battles by 1/max(n_pair, N) so over-sampled pairs do not dominate
    /// (arena-rank's option; N defaults to its 50). Style control reweights unless N is 0.
    #[arg(long, value_name = "N", num_args = 0..=1, default_missing_value = "50")]
    pub reweight: Option<u64>,
    /// Inverse-propensity weighting: each battle weighs 1/(the probability its pair was
    /// drawn with, stored by the arena), scaled to a mean of 1, so pairs the arena drew more
    /// often (boosted new models) do not dominate; battles without one weigh 1 (counted under
    /// the table). Sandwich intervals and half-win ties only.
    #[arg(long)]
    pub ipw: bool,
    /// Mark models with fewer battles (counted votes) as provisional: a table column, a CSV
    /// column and `provisional` in JSON (0: no marks; the controller uses --new-model-votes).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub provisional_votes: u64,
    /// Style control: arena-rank's contextual Bradley-Terry over each answer's length and
    /// markdown, recorded by the arena at vote time or read from a battles file's
    /// conv_metadata (the public dataset's shape).
    #[arg(long)]
    pub style_control: bool,
    /// Only the votes of battles in category C (coding, math, multi_turn, long_query,
    /// non_english, a language such as english, hard_prompt), tagged when each vote was cast.
    #[arg(long, value_name = "C")]
    pub category: Option<String>,
    /// With --category, list only models with at least N battles in it.
    #[arg(long, value_name = "N", default_value_t = arena_controller::config::DEFAULT_CATEGORY_MIN_BATTLES)]
    pub category_min_battles: u64,
    /// Also write the ratings with their method, options, seed, software version and the
    /// SHA-256 of the exact vote set to FILE (JSON).
    #[arg(long, value_name = "FILE", conflicts_with = "verify")]
    pub snapshot: Option<PathBuf>,
    /// Recompute a snapshot's ratings from the votes with its own options and say whether
    /// they are the same (non-zero exit when not); the other rating flags are ignored.
    #[arg(long, value_name = "FILE")]
    pub verify: Option<PathBuf>,
    /// How ties count: half a win each way, or Davidson's fitted tie parameter.
    #[arg(long, value_enum, default_value = "half-win")]
    pub ties: TiesArg,
    /// Bootstrap rounds for --ci bootstrap.
    #[arg(long, default_value_t = 100)]
    pub bootstrap: usize,
    /// Seed of the bootstrap.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Shift Bradley-Terry ratings so MODEL has RATING, e.g. llama-13b=800.
    #[arg(long, value_parser = leaderboard::parse_anchor)]
    pub anchor: Option<(String, f64)>,
    /// With --method fastchat: plain maximum likelihood instead of its L2 fit (C = 1).
    #[arg(long)]
    pub mle: bool,
    /// Report the estimator's own intervals even where they are narrower than a fair coin
    /// toss per battle allows (as arena-rank and FastChat do).
    #[arg(long)]
    pub no_interval_floor: bool,
    /// Models with fewer battles are flagged and show "too few votes" for an interval.
    #[arg(long, default_value_t = 30)]
    pub min_battles: u64,
    /// table, json (one array of row objects) or csv.
    #[arg(long, default_value = "table")]
    pub format: OutputFormat,
    /// Model catalog (TOML, as the controller's --model-info): JSON rows get each model's
    /// `info`, the table and CSV organization and licence columns.
    #[arg(long, env = "ARENA_MODEL_INFO", value_name = "FILE")]
    pub model_info: Option<PathBuf>,
}

impl LeaderboardArgs {
    /// Computes and prints the leaderboard.
    pub async fn run(self) -> anyhow::Result<()> {
        let snapshots = leaderboard::Snapshots {
            write: self.snapshot.clone(),
            verify: self.verify.clone(),
        };
        // A bad catalog fails before the ratings are computed.
        let catalog = match self
            .model_info
            .as_deref()
            .filter(|p| !p.as_os_str().is_empty())
        {
            Some(path) => Some(Catalog::load(path)?),
            None => None,
        };
        let view = leaderboard::View {
            style_control: self.style_control,
            category: self.category.clone(),
        };
        let source = self.source();
        let out = leaderboard::run_cli(
            source.clone(),
            self.options(),
            &view,
            leaderboard::Listing {
                category_min_battles: self.category_min_battles,
                provisional_votes: self.provisional_votes,
            },
            self.format,
            snapshots,
            catalog.as_ref(),
        )
        .await?;
        print!("{out}");
        // Stdout stays the ratings alone (JSON stays one array); the votes left out are told
        // on stderr.
        if let Source::Database(url) = &source {
            if let Some(line) = exclusions::cli_summary(url).await? {
                eprintln!("{line}");
            }
        }
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
            method: match self.method {
                MethodArg::ArenaRank => Method::ArenaRank,
                MethodArg::Fastchat => Method::FastChat,
            },
            ci: match self.ci {
                CiArg::Sandwich => Ci::Sandwich,
                CiArg::Bootstrap => Ci::Bootstrap,
            },
            reweight: match (self.reweight, self.style_control) {
                (Some(0), _) | (None, false) => None,
                (Some(n), _) => Some(n),
                // arena-rank's contextual dataset reweights by default.
                (None, true) => Some(MIN_PAIR_COUNT),
            },
            interval_floor: !self.no_interval_floor,
            ties: match self.ties {
                TiesArg::HalfWin => Ties::HalfWin,
                TiesArg::Davidson => Ties::Davidson,
            },
            bootstrap_rounds: self.bootstrap,
            seed: self.seed,
            anchor: self.anchor.clone(),
            regularization: if self.mle {
                Regularization::None
            } else {
                Regularization::L2 { c: 1.0 }
            },
            min_battles: self.min_battles,
            ipw: self.ipw,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: LeaderboardArgs,
    }

    fn options(argv: &[&str]) -> RatingOptions {
        let cli = Cli::try_parse_from([&["leaderboard"], argv].concat()).expect("parses");
        cli.args.options()
    }

    #[test]
    fn defaults_are_arena_ranks_method_with_sandwich_intervals() {
        let o = options(&[]);
        assert_eq!(
            (o.method, o.ci, o.reweight),
            (Method::ArenaRank, Ci::Sandwich, None)
        );
        assert!(o.interval_floor);
    }

    #[test]
    fn reweight_alone_takes_arena_ranks_threshold() {
        assert_eq!(options(&["--reweight"]).reweight, Some(MIN_PAIR_COUNT));
        assert_eq!(options(&["--style-control"]).reweight, Some(MIN_PAIR_COUNT));
        assert_eq!(
            options(&["--style-control", "--reweight", "0"]).reweight,
            None
        );
        assert_eq!(options(&["--reweight", "20"]).reweight, Some(20));
        let o = options(&[
            "--method",
            "fastchat",
            "--ci",
            "bootstrap",
            "--no-interval-floor",
        ]);
        assert_eq!(
            (o.method, o.ci, o.interval_floor),
            (Method::FastChat, Ci::Bootstrap, false)
        );
        assert_eq!(options(&["--ties", "davidson"]).ties, Ties::Davidson);
        assert!(!options(&[]).ipw && options(&["--ipw"]).ipw);
    }
}
