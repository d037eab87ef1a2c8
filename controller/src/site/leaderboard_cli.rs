//! `arena leaderboard`: the ratings of a store's counted votes or of a battles file, with
//! style control, a category, snapshots and their verification, as a table, JSON or CSV.

use std::path::PathBuf;

use arena_ratings::{Aggregate, RatingOptions};

use super::catalog::Catalog;
use super::leaderboard::{aggregate_store, compute, styled_board, View};
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

/// Recomputes a snapshot's ratings from `agg` with its own options and compares: the text to
/// print when it is reproduced, an error listing the differences when not.
async fn verify_snapshot(
    path: &std::path::Path,
    agg: Aggregate,
) -> Result<String, ControllerError> {
    use arena_ratings::snapshot::{self, Snapshot};
    let fail = |why: String| ControllerError::Leaderboard(format!("{}: {why}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|e| fail(format!("cannot read: {e}")))?;
    let snap: Snapshot = serde_json::from_str(&text)
        .map_err(|e| fail(format!("not a leaderboard snapshot: {e}")))?;
    if snap.format != snapshot::FORMAT {
        return Err(fail(format!(
            "snapshot format '{}', this arena reads '{}'",
            snap.format,
            snapshot::FORMAT
        )));
    }
    let board = compute(agg.clone(), snap.options.clone()).await?;
    let verdict = snapshot::verify(&snap, &agg, &board);
    if !verdict.matches() {
        return Err(fail(format!(
            "not reproduced:\n  {}",
            verdict.differences.join("\n  ")
        )));
    }
    let mut out = format!(
        "{}: reproduced: the same {} votes (sha256 {}), every rating and interval within \
         1e-6 points (largest difference {:.1e})\n",
        path.display(),
        snap.battles,
        snap.vote_set_sha256,
        verdict.max_difference
    );
    for note in &verdict.differences {
        out.push_str(&format!("note: {note}\n"));
    }
    Ok(out)
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
    let style_control = view.style_control;
    let category = view.category.as_deref();
    view.check().map_err(ControllerError::Leaderboard)?;
    if (style_control || category.is_some())
        && (snapshot.write.is_some() || snapshot.verify.is_some())
    {
        if options.ipw && (snapshot.write.is_some() || snapshot.verify.is_some()) {
            return Err(ControllerError::Leaderboard(
            "snapshots of inverse-propensity-weighted ratings are not supported yet (their vote \
             set would have to include each battle's pair probability)"
                .into(),
        ));
        }
        return Err(ControllerError::Leaderboard(
            "snapshots of style-controlled or category ratings are not supported yet (their vote \
             set would have to include each answer's style and each battle's categories)"
                .into(),
        ));
    }
    if let (Some(_), Source::File { .. }) = (category, &source) {
        return Err(ControllerError::Leaderboard(
            "--category rates the arena's own votes, which are tagged when they are cast; a \
             battles file carries no tags (use --database-url)"
                .into(),
        ));
    }
    let mut board = if style_control {
        let options = options.clone();
        match source {
            Source::Database(url) => {
                let store = arena_store::connect(&url).await?;
                let (board, without_style) = styled_board(&*store, &options, category).await?;
                if without_style > 0 {
                    eprintln!(
                        "{without_style} counted votes left out of style control: cast before \
                         the arena recorded answers' style, or an answer's token count unknown"
                    );
                }
                board
            }
            Source::File { path, strict } => {
                let mut battles = Vec::new();
                let report =
                    arena_ratings::read_styled_battles(&path, strict, |b| battles.push(b))?;
                print_report(&path, &report);
                tokio::task::spawn_blocking(move || {
                    arena_ratings::compute_style_controlled(&battles, &options)
                })
                .await
                .map_err(|e| {
                    ControllerError::Leaderboard(format!("the ratings task failed: {e}"))
                })??
            }
        }
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
        if let Some(path) = &snapshot.verify {
            return verify_snapshot(path, agg).await;
        }
        let board = compute(agg.clone(), options.clone()).await?;
        if let Some(path) = &snapshot.write {
            let snap = arena_ratings::snapshot::Snapshot::new(&agg, &options, &board);
            let text = serde_json::to_string_pretty(&snap)
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
        }
        board
    };
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
