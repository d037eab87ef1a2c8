//! The counted anonymous votes as the ratings read them.

use arena_ratings::{Aggregate, Battle, RatingsError, Winner};

use crate::{ArenaStore, StoreError};

/// Folds the store's counted anonymous votes, in the order they were cast, into an
/// aggregate. The outer error is the store's; the inner one a vote the ratings refuse, as it
/// is (it stops the stream).
pub async fn counted_aggregate(
    store: &dyn ArenaStore,
) -> Result<Result<Aggregate, RatingsError>, StoreError> {
    let mut agg = Aggregate::new();
    let mut refused = None;
    let streamed = store
        .counted_battles(&mut |row| {
            let winner = Winner::parse(&row.winner).ok_or_else(|| {
                StoreError::Database(format!("a vote with winner '{}'", row.winner))
            })?;
            agg.add(&Battle {
                model_a: row.model_a,
                model_b: row.model_b,
                winner,
                tstamp: Some(row.tstamp_ms as f64 / 1000.0),
                anony: Some(true),
                turn: None,
            })
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
