//! `arena leaderboard`: the ratings of a store's counted votes or of a battles file, with
//! style control, a category, snapshots and their verification, as a table, JSON or CSV.

use std::path::PathBuf;

use arena_ratings::snapshot::{self, Snapshot, VoteSet};
use arena_ratings::{Aggregate, Leaderboard, RatingOptions};

use super::catalog::Catalog;
use super::leaderboard::{aggregate_store, compute, View};
use crate::error::ControllerError;

/// Which models `arena leaderboard` lists and marks.
#[derive(Debug, Clone, Copy, Default)]
pub struct Listing {
    /// With a category, only models with at least this many battles in it.
    pub category_min_battles: u64,
    /// Models with fewer votes are marked provisional (0: none).
    pub provisional_votes: u64,
}

/// `arena leaderboard --snapshot FILE` and `--verify FILE`.
#[derive(Debug, Clone, Default)]
pub struct Snapshots {
    /// Write the ratings with their method, options and vote-set hash here.
    pub write: Option<std::path::PathBuf>,
    /// Recompute with this snapshot's options and say whether the result is the same.
    pub verify: Option<std::path::PathBuf>,
}

/// The snapshot at `path`, read for `--verify`.
fn read_snapshot(path: &std::path::Path) -> Result<Snapshot, ControllerError> {
    let fail = |why: String| ControllerError::Leaderboard(format!("{}: {why}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|e| fail(format!("cannot read: {e}")))?;
    let snap: Snapshot = serde_json::from_str(&text)
        .map_err(|e| fail(format!("not a leaderboard snapshot: {e}")))?;
    if !snapshot::READABLE.contains(&snap.format.as_str()) {
        return Err(fail(format!(
            "snapshot format '{}', this arena reads '{}'",
            snap.format,
            snapshot::READABLE.join("', '")
        )));
    }
    Ok(snap)
}

/// Compares a snapshot with `board`, recomputed from `votes` with its own options and view:
/// the text to print when it is reproduced, an error listing the differences when not.
fn verdict(
    path: &std::path::Path,
    snap: &Snapshot,
    votes: &VoteSet,
    board: &Leaderboard,
) -> Result<String, ControllerError> {
    let verdict = snapshot::verify(snap, votes, board);
    if !verdict.matches() {
        return Err(ControllerError::Leaderboard(format!(
            "{}: not reproduced:\n  {}",
            path.display(),
            verdict.differences.join("\n  ")
        )));
    }
    let mut out = format!(
        "{}: reproduced: the same {} votes (sha256 {}{}{}), every rating and interval within \
         1e-6 points (largest difference {:.1e})\n",
        path.display(),
        snap.battles,
        snap.vote_set_sha256,
        snap.style_sha256
            .as_ref()
            .map_or(String::new(), |h| format!(", answers' style sha256 {h}")),
        snap.propensity_sha256
            .as_ref()
            .map_or(String::new(), |h| format!(
                ", pair probabilities sha256 {h}"
            )),
        verdict.max_difference
    );
    for note in &verdict.differences {
        out.push_str(&format!("note: {note}\n"));
    }
    Ok(out)
}

/// Writes the snapshot of `board` to `path` and says so on stderr.
fn write_snapshot(path: &std::path::Path, snap: &Snapshot) -> Result<(), ControllerError> {
    let text = serde_json::to_string_pretty(snap)
        .map_err(|e| ControllerError::Leaderboard(e.to_string()))?;
    std::fs::write(path, text + "\n").map_err(|e| {
        ControllerError::Leaderboard(format!("cannot write {}: {e}", path.display()))
    })?;
    eprintln!(
        "{}: snapshot of {} votes (sha256 {})",
        path.display(),
        snap.battles,
        snap.vote_set_sha256
    );
    Ok(())
}

/// Says on stderr which rows of a battles file were skipped, and whether it was in time order.
fn print_report(path: &std::path::Path, report: &arena_ratings::ReadReport) {
    for bad in &report.bad {
        eprintln!("{}: skipped {bad}", path.display());
    }
    if report.bad_total > report.bad.len() as u64 {
        eprintln!(
            "{}: {} more bad rows skipped",
            path.display(),
            report.bad_total - report.bad.len() as u64
        );
    }
    if report.out_of_order > 0 {
        eprintln!(
            "{}: {} battles are earlier than the one before them; online Elo takes them in file order",
            path.display(),
            report.out_of_order
        );
    }
}

/// Where `arena leaderboard` reads battles from.
#[derive(Debug, Clone)]
pub enum Source {
    /// The store's counted anonymous votes.
    Database(String),
    /// A JSONL or CSV battles file; `strict` stops at the first bad row.
    File {
        /// The file.
        path: PathBuf,
        /// Fail on the first bad row instead of skipping it.
        strict: bool,
    },
}

/// How `arena leaderboard` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// An aligned text table.
    Table,
    /// One JSON array of row objects.
    Json,
    /// CSV with a header row.
    Csv,
}

arena_ratings::from_words!(OutputFormat, "format", "table" => Table, "json" => Json, "csv" => Csv);

/// Parses `--anchor MODEL=RATING`.
pub fn parse_anchor(spec: &str) -> Result<(String, f64), String> {
    let (model, rating) = arena_ratings::parse::name_value(spec, "anchor", "MODEL=RATING")?;
    if model.is_empty() || !rating.is_finite() {
        return Err(format!("anchor '{spec}' is not MODEL=RATING"));
    }
    Ok((model, rating))
}

/// `arena leaderboard`: reads the battles, computes, and renders (with the catalog's info
/// when given). Bad rows of a file are reported on stderr with their line numbers.
pub async fn run_cli(
    source: Source,
    options: RatingOptions,
    view: &View,
    listing: Listing,
    format: OutputFormat,
    snapshot: Snapshots,
    catalog: Option<&Catalog>,
) -> Result<String, ControllerError> {
    let Listing {
        category_min_battles,
        provisional_votes,
    } = listing;
    view.check().map_err(ControllerError::Leaderboard)?;
    // A snapshot is verified with its own options and view; the flags' are ignored.
    let verifying = match &snapshot.verify {
        Some(path) => Some((path, read_snapshot(path)?)),
        None => None,
    };
    let (options, view) = match &verifying {
        Some((_, snap)) => (
            snap.options.clone(),
            View {
                style_control: snap.view.style_control,
                category: snap.view.category.clone(),
            },
        ),
        None => (options, view.clone()),
    };
    view.check().map_err(ControllerError::Leaderboard)?;
    let category = view.category.as_deref();
    let hashed = snapshot.write.is_some() || verifying.is_some();
    if let (Some(_), Source::File { .. }) = (category, &source) {
        return Err(ControllerError::Leaderboard(
            "--category rates the arena's own votes, which are tagged when they are cast; a \
             battles file carries no tags (use --database-url)"
                .into(),
        ));
    }
    let (mut board, votes) = if view.style_control {
        let battles = match source {
            Source::Database(url) => {
                let store = arena_store::connect(&url).await?;
                let votes = arena_store::ratings::counted_styled(&*store, category).await?;
                if votes.without_style > 0 {
                    eprintln!(
                        "{} counted votes left out of style control: cast before the arena \
                         recorded answers' style, or an answer's token count unknown",
                        votes.without_style
                    );
                }
                votes.battles
            }
            Source::File { path, strict } => {
                let mut battles = Vec::new();
                let report =
                    arena_ratings::read_styled_battles(&path, strict, |b| battles.push(b))?;
                print_report(&path, &report);
                battles
            }
        };
        let options = options.clone();
        tokio::task::spawn_blocking(move || {
            let board = arena_ratings::compute_style_controlled(&battles, &options)?;
            let votes = hashed.then(|| VoteSet::styled(&battles)).transpose()?;
            Ok::<_, arena_ratings::RatingsError>((board, votes))
        })
        .await
        .map_err(|e| ControllerError::Leaderboard(format!("the ratings task failed: {e}")))??
    } else {
        let agg = match source {
            Source::Database(url) => {
                aggregate_store(&*arena_store::connect(&url).await?, category).await?
            }
            Source::File { path, strict } => {
                let (agg, report) = Aggregate::from_file(&path, strict)?;
                print_report(&path, &report);
                agg
            }
        };
        let votes = hashed.then(|| VoteSet::of(&agg, &options));
        (compute(agg, options.clone()).await?, votes)
    };
    if let (Some((path, snap)), Some(votes)) = (&verifying, &votes) {
        return verdict(path, snap, votes, &board);
    }
    if let (Some(path), Some(votes)) = (&snapshot.write, &votes) {
        let view = arena_ratings::snapshot::View {
            style_control: view.style_control,
            category: view.category.clone(),
        };
        write_snapshot(path, &Snapshot::new(votes, &options, &view, &board))?;
    }
    if let Some(c) = category {
        let hidden = board.only_models_with(category_min_battles);
        eprintln!(
            "category '{c}': {} counted votes; models with fewer than {category_min_battles} \
             battles in it are not listed ({hidden} left out)",
            board.battles
        );
    }
    super::leaderboard_text::render(&board, format, catalog, provisional_votes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors_and_formats_parse_with_clear_errors() {
        assert_eq!(
            parse_anchor("llama-13b=800").unwrap(),
            ("llama-13b".into(), 800.0)
        );
        assert_eq!(parse_anchor("a=b=1000").unwrap(), ("a=b".into(), 1000.0));
        assert!(parse_anchor("llama").is_err());
        assert!(parse_anchor("x=high").unwrap_err().contains("not a number"));
        assert!("yaml".parse::<OutputFormat>().is_err());
        assert_eq!("csv".parse::<OutputFormat>().unwrap(), OutputFormat::Csv);
    }
}
