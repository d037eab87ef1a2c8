//! A voter's signals, measured inside its vote's transaction: the voter's row in `voters`
//! is locked first, so two votes of one client (even on two battles, through two replicas)
//! take turns and neither can miss the other.

/// Locks the voter's row of vote `$v` (created on its first vote) in transaction `$tx`,
/// measures the vote's [`VoteSignals`](crate::signals::VoteSignals) at `$now` (Unix ms, the
/// server's clock) with the judged answers' end `$finished_ms`, and moves the voter's state
/// past this vote. Query errors return from the calling function.
macro_rules! voter_signals {
    ($tx:ident, $v:expr, $now:expr, $finished_ms:expr) => {{
        // An upsert that always writes takes the row lock in Postgres (DO NOTHING would not)
        // and the write lock in SQLite.
        sqlx::query(
            "INSERT INTO voters (voter_hash, last_winner, same_side_streak, last_vote_ms) \
             VALUES ($1, '', 0, $2) \
             ON CONFLICT (voter_hash) DO UPDATE SET last_vote_ms = voters.last_vote_ms",
        )
        .bind(&$v.voter_hash)
        .bind($now)
        .execute(&mut *$tx)
        .await
        .map_err(query_error)?;
        let (last_winner, streak): (String, i64) = sqlx::query_as(
            "SELECT last_winner, same_side_streak FROM voters WHERE voter_hash = $1",
        )
        .bind(&$v.voter_hash)
        .fetch_one(&mut *$tx)
        .await
        .map_err(query_error)?;
        let (earlier,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM votes WHERE voter_hash = $1 AND created_ms > $2")
                .bind(&$v.voter_hash)
                .bind($now - $crate::signals::HOUR_MS)
                .fetch_one(&mut *$tx)
                .await
                .map_err(query_error)?;
        let finished: Option<i64> = $finished_ms;
        let signals = $crate::signals::VoteSignals {
            // Replicas' clocks differ by a little: an answer "ending after" the vote ended
            // just before it.
            answer_to_vote_ms: finished.map(|f| ($now - f).max(0)),
            client_votes_hour: earlier + 1,
            same_side_streak: $crate::signals::next_streak(
                Some((last_winner.as_str(), streak)),
                &$v.winner,
            ),
        };
        sqlx::query(
            "UPDATE voters SET last_winner = $2, same_side_streak = $3, last_vote_ms = $4 \
             WHERE voter_hash = $1",
        )
        .bind(&$v.voter_hash)
        .bind(&$v.winner)
        .bind(signals.same_side_streak)
        .bind($now)
        .execute(&mut *$tx)
        .await
        .map_err(query_error)?;
        signals
    }};
}
