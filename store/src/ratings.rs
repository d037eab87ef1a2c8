//! The counted anonymous votes as the ratings read them.

use arena_ratings::metadata::styles_of;
use arena_ratings::{Aggregate, Battle, RatingsError, StyledBattle, Winner};

use crate::{ArenaStore, BattleRow, StoreError};

/// A stored vote as a battle of the ratings.
fn battle_of(row: &BattleRow) -> Result<Battle, StoreError> {
    let winner = Winner::parse(&row.winner)
        .ok_or_else(|| StoreError::Database(format!("a vote with winner '{}'", row.winner)))?;
    Ok(Battle {
        model_a: row.model_a.clone(),
        model_b: row.model_b.clone(),
        winner,
        tstamp: Some(row.tstamp_ms as f64 / 1000.0),
        anony: Some(true),
        turn: None,
    })
}

/// Folds the store's counted anonymous votes (of `category` only, when given), in the order
/// they were cast, into an aggregate, each with the probability its pair was drawn with (for
/// inverse-propensity weighting; a stored probability outside (0, 1] is refused). The outer
/// error is the store's; the inner one a vote the ratings refuse, as it
/// is (it stops the stream).
pub async fn counted_aggregate(
    store: &dyn ArenaStore,
    category: Option<&str>,
) -> Result<Result<Aggregate, RatingsError>, StoreError> {
    let mut agg = Aggregate::new();
    let mut refused = None;
    let streamed = store
        .counted_battles(false, category, &mut |row| {
            agg.add_with_probability(&battle_of(&row)?, row.pair_probability)
                .map_err(|e| {
                    let stop = StoreError::Database(e.to_string());
                    refused = Some(e);
                    stop
                })
        })
        .await;
    if let Some(e) = refused {
        return Ok(Err(e));
    }
    streamed?;
    Ok(Ok(agg))
}

/// The counted anonymous votes whose answers' style is known, for style control.
#[derive(Debug, Clone, Default)]
pub struct StyledVotes {
    /// Those votes with both answers' style, in the order they were cast.
    pub battles: Vec<StyledBattle>,
    /// Counted votes left out: cast before style was recorded, or with an answer whose token
    /// count its model did not report.
    pub without_style: u64,
}

/// The store's counted anonymous votes (of `category` only, when given) with the style of
/// what each judged.
pub async fn counted_styled(
    store: &dyn ArenaStore,
    category: Option<&str>,
) -> Result<StyledVotes, StoreError> {
    let mut votes = StyledVotes::default();
    store
        .counted_battles(true, category, &mut |row| {
            let meta = row
                .conv_metadata
                .as_deref()
                .and_then(|m| serde_json::from_str(m).ok())
                .and_then(|m| styles_of(&m).ok());
            match meta {
                Some((style_a, style_b)) => votes.battles.push(StyledBattle {
                    battle: battle_of(&row)?,
                    style_a,
                    style_b,
                }),
                None => votes.without_style += 1,
            }
            Ok(())
        })
        .await?;
    Ok(votes)
}
