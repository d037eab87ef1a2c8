//! The daily leaderboard snapshots the site keeps: `GET /api/leaderboard/snapshots` lists
//! them, `GET /api/leaderboard/snapshots/{day}` gives one as `arena leaderboard --verify`
//! reads it.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::{store_error, ArenaState};
use crate::error::ApiError;

/// Snapshots listed, newest first: a year of days.
const LISTED: i64 = 366;

/// `GET /api/leaderboard/snapshots`.
pub async fn list(State(state): State<Arc<ArenaState>>) -> Result<Json<Value>, ApiError> {
    let kept = state.store.snapshots(LISTED).await.map_err(store_error)?;
    Ok(Json(json!({ "snapshots": kept })))
}

/// Whether `day` reads `YYYY-MM-DD`.
fn is_day(day: &str) -> bool {
    let b = day.as_bytes();
    b.len() == 10
        && b.iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        })
}

/// `GET /api/leaderboard/snapshots/{day}`: the snapshot's JSON as it was kept.
pub async fn one(
    State(state): State<Arc<ArenaState>>,
    Path(day): Path<String>,
) -> Result<Response, ApiError> {
    if !is_day(&day) {
        return Err(ApiError::invalid_param(
            "day",
            "a snapshot's day reads YYYY-MM-DD (UTC), e.g. 2026-12-03",
        ));
    }
    let text = state
        .store
        .snapshot(&day)
        .await
        .map_err(store_error)?
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "no leaderboard snapshot of {day} (GET /api/leaderboard/snapshots lists them)"
            ))
        })?;
    // Kept immutable once written: a day's snapshot never changes.
    Ok((
        [
            (CONTENT_TYPE, "application/json"),
            (CACHE_CONTROL, "public, max-age=86400"),
        ],
        text,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_calendar_shaped_days_are_looked_up() {
        assert!(super::is_day("2026-12-03"));
        for bad in [
            "2026-1-03",
            "2026/12/03",
            "../etc/pwd",
            "",
            "2026-12-031",
            "２０２６-12-03",
        ] {
            assert!(!super::is_day(bad), "{bad}");
        }
    }
}
