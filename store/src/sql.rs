//! The SQL behind [`ArenaStore`], written once for both backends: the queries use `$N`
//! placeholders, BIGINT/BOOLEAN/TEXT columns and explicit casts, which Postgres and SQLite read
//! alike; a macro stamps the implementation out for each pool type.

use arena_ratings::clock::unix_ms;
use futures_util::StreamExt;

use crate::bulk::VOTES_PER_STATEMENT;
use crate::signals::{answers_finished_ms, judge};
use crate::vote::{judged_metadata, refusal, VoteRow, VOTE_ROW_COLUMNS};
use crate::{
    AnswerUpdate, ArenaStore, BattleRecord, BattleRow, ConversationRecord, CountedVote,
    ExcludedVotes, ExportBattle, ExportConversation, ExportFilter, MessageRecord, ModelStats,
    NewBattle, NewFlag, NewMessage, NewRating, NewVote, OpenTurn, PostgresStore, Sink,
    SnapshotRecord, SqliteStore, StoreError, VoteOutcome, GENERATING, INTERRUPTED,
};

/// What an answer left `generating` by a stopped controller says.
const STOPPED: &str = "the answer stopped when the server did; regenerate it";

/// A unique-constraint violation is a conflict the caller reports (409); the rest are failures.
pub(crate) fn query_error(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict(db.message().to_string())
        }
        _ => StoreError::Database(e.to_string()),
    }
}

/// The INSERT of one message row, ready to execute.
macro_rules! insert_message {
    ($m:expr, $now:expr) => {
        sqlx::query(
            "INSERT INTO messages (conversation_id, seq, turn, role, content, model, \
             prompt_tokens, completion_tokens, latency_ms, ttft_ms, finish_reason, error, \
             lease_ms, created_ms, finished_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        )
        .bind(&$m.conversation_id)
        .bind($m.seq)
        .bind($m.turn)
        .bind($m.role)
        .bind(&$m.content)
        .bind(&$m.model)
        .bind($m.prompt_tokens)
        .bind($m.completion_tokens)
        .bind($m.latency_ms)
        .bind($m.ttft_ms)
        .bind(&$m.finish_reason)
        .bind(&$m.error)
        .bind($m.lease_ms)
        .bind($now)
        // A row stored already ended (not `generating`) ended now.
        .bind(
            $m.finish_reason
                .as_deref()
                .filter(|f| *f != GENERATING)
                .map(|_| $now),
        )
    };
}

macro_rules! arena_store_sql {
    ($store:ty, $backend:literal) => {
        #[async_trait::async_trait]
        impl ArenaStore for $store {
            fn backend(&self) -> &'static str {
                $backend
            }

            async fn ping(&self) -> Result<(), StoreError> {
                sqlx::query("SELECT 1")
                    .execute(&self.pool)
                    .await
                    .map(|_| ())
                    .map_err(query_error)
            }

            async fn create_battle(&self, b: &NewBattle) -> Result<(), StoreError> {
                let now = unix_ms() as i64;
                let mut tx = self.pool.begin().await.map_err(query_error)?;
                for (conversation, model) in
                    [(&b.conversation_a, &b.model_a), (&b.conversation_b, &b.model_b)]
                {
                    sqlx::query(
                        "INSERT INTO conversations (id, mode, model, client_hash, created_ms, \
                         terms_version) VALUES ($1, 'battle', $2, $3, $4, $5)",
                    )
                    .bind(conversation)
                    .bind(model)
                    .bind(&b.client_hash)
                    .bind(now)
                    .bind(&b.terms_version)
                    .execute(&mut *tx)
                    .await
                    .map_err(query_error)?;
                }
                sqlx::query(
                    "INSERT INTO battles (id, model_a, model_b, anonymous, conversation_a, \
                     conversation_b, client_hash, created_ms, pair_probability) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(&b.id)
                .bind(&b.model_a)
                .bind(&b.model_b)
                .bind(b.anonymous)
                .bind(&b.conversation_a)
                .bind(&b.conversation_b)
                .bind(&b.client_hash)
                .bind(now)
                .bind(b.pair_probability)
                .execute(&mut *tx)
                .await
                .map_err(query_error)?;
                tx.commit().await.map_err(query_error)
            }

            async fn open_turn(&self, t: &OpenTurn) -> Result<(), StoreError> {
                let now = unix_ms() as i64;
                let mut tx = self.pool.begin().await.map_err(query_error)?;
                if let Some(battle) = &t.battle_id {
                    // A no-op write takes the battle's row lock in Postgres and the write
                    // lock in SQLite, so a vote and a turn on one battle never interleave.
                    sqlx::query("UPDATE battles SET created_ms = created_ms WHERE id = $1")
                        .bind(battle)
                        .execute(&mut *tx)
                        .await
                        .map_err(query_error)?;
                    let (votes,): (i64,) =
                        sqlx::query_as("SELECT COUNT(*) FROM votes WHERE battle_id = $1")
                            .bind(battle)
                            .fetch_one(&mut *tx)
                            .await
                            .map_err(query_error)?;
                    if votes > 0 {
                        return Err(StoreError::Closed);
                    }
                }
                for (conversation, turn) in &t.supersede {
                    sqlx::query(
                        "UPDATE messages SET superseded = TRUE \
                         WHERE conversation_id = $1 AND turn = $2 AND role = 'assistant'",
                    )
                    .bind(conversation)
                    .bind(turn)
                    .execute(&mut *tx)
                    .await
                    .map_err(query_error)?;
                }
                for m in &t.rows {
                    insert_message!(m, now).execute(&mut *tx).await.map_err(query_error)?;
                }
                tx.commit().await.map_err(query_error)
            }

            async fn update_answer(&self, u: &AnswerUpdate) -> Result<(), StoreError> {
                let q = match &u.finished {
                    // Progress only while still generating: a late tick never reopens it.
                    None => sqlx::query(
                        "UPDATE messages SET content = $3, lease_ms = $4 \
                         WHERE conversation_id = $1 AND seq = $2 AND finish_reason = 'generating'",
                    )
                    .bind(&u.conversation_id)
                    .bind(u.seq)
                    .bind(&u.content)
                    .bind(u.lease_ms),
                    Some(f) => sqlx::query(
                        "UPDATE messages SET content = $3, prompt_tokens = $4, completion_tokens = $5, \
                         latency_ms = $6, ttft_ms = $7, finish_reason = $8, error = $9, lease_ms = NULL, \
                         finished_ms = $10 WHERE conversation_id = $1 AND seq = $2",
                    )
                    .bind(&u.conversation_id)
                    .bind(u.seq)
                    .bind(&u.content)
                    .bind(f.prompt_tokens)
                    .bind(f.completion_tokens)
                    .bind(f.latency_ms)
                    .bind(f.ttft_ms)
                    .bind(&f.finish_reason)
                    .bind(&f.error)
                    .bind(unix_ms() as i64),
                };
                q.execute(&self.pool).await.map(|_| ()).map_err(query_error)
            }

            async fn close_expired_answers(&self, now_ms: i64) -> Result<u64, StoreError> {
                sqlx::query(
                    "UPDATE messages SET finish_reason = $1, error = $2, lease_ms = NULL, \
                     finished_ms = $4 WHERE finish_reason = $3 AND lease_ms < $4",
                )
                .bind(INTERRUPTED)
                .bind(STOPPED)
                .bind(GENERATING)
                .bind(now_ms)
                .execute(&self.pool)
                .await
                .map(|r| r.rows_affected())
                .map_err(query_error)
            }

            async fn battle(&self, id: &str) -> Result<Option<BattleRecord>, StoreError> {
                let row: Option<(String, String, String, bool, String, String, i64)> = sqlx::query_as(
                    "SELECT b.id, b.model_a, b.model_b, b.anonymous, b.conversation_a, b.conversation_b, \
                     (SELECT COUNT(*) FROM votes v WHERE v.battle_id = b.id) FROM battles b WHERE b.id = $1",
                )
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .map_err(query_error)?;
                Ok(row.map(|(id, model_a, model_b, anonymous, conversation_a, conversation_b, votes)| {
                    BattleRecord { id, model_a, model_b, anonymous, conversation_a, conversation_b, votes }
                }))
            }

            async fn create_chat(
                &self,
                id: &str,
                model: &str,
                client_hash: &str,
                terms_version: Option<&str>,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO conversations (id, mode, model, client_hash, created_ms, \
                     terms_version) VALUES ($1, 'direct', $2, $3, $4, $5)",
                )
                .bind(id)
                .bind(model)
                .bind(client_hash)
                .bind(unix_ms() as i64)
                .bind(terms_version)
                .execute(&self.pool)
                .await
                .map(|_| ())
                .map_err(query_error)
            }

            async fn conversation(
                &self,
                id: &str,
            ) -> Result<Option<ConversationRecord>, StoreError> {
                let row: Option<(String, String, String, Option<String>)> = sqlx::query_as(
                    "SELECT id, mode, model, terms_version FROM conversations WHERE id = $1",
                )
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .map_err(query_error)?;
                Ok(row.map(|(id, mode, model, terms_version)| ConversationRecord {
                    id,
                    mode,
                    model,
                    terms_version,
                }))
            }

            async fn messages(
                &self,
                conversation_id: &str,
            ) -> Result<Vec<MessageRecord>, StoreError> {
                let rows: Vec<(i64, i64, String, String, Option<String>, bool, Option<i64>)> = sqlx::query_as(
                    "SELECT seq, turn, role, content, finish_reason, superseded, lease_ms FROM messages \
                     WHERE conversation_id = $1 ORDER BY seq",
                )
                .bind(conversation_id)
                .fetch_all(&self.pool)
                .await
                .map_err(query_error)?;
                Ok(rows
                    .into_iter()
                    .map(|(seq, turn, role, content, finish_reason, superseded, lease_ms)| MessageRecord {
                        seq,
                        turn,
                        role,
                        content,
                        finish_reason,
                        superseded,
                        lease_ms,
                    })
                    .collect())
            }

            async fn add_messages(&self, messages: &[NewMessage]) -> Result<(), StoreError> {
                let now = unix_ms() as i64;
                let mut tx = self.pool.begin().await.map_err(query_error)?;
                for m in messages {
                    insert_message!(m, now).execute(&mut *tx).await.map_err(query_error)?;
                }
                tx.commit().await.map_err(query_error)
            }

            async fn add_vote(&self, v: &NewVote) -> Result<VoteOutcome, StoreError> {
                let mut tx = self.pool.begin().await.map_err(query_error)?;
                // The same lock as open_turn: no turn starts between these checks and the vote.
                sqlx::query("UPDATE battles SET created_ms = created_ms WHERE id = $1")
                    .bind(&v.battle_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(query_error)?;
                let (conversation_a, conversation_b, votes): (String, String, i64) = sqlx::query_as(
                    "SELECT conversation_a, conversation_b, \
                     (SELECT COUNT(*) FROM votes WHERE battle_id = $1) FROM battles WHERE id = $1",
                )
                .bind(&v.battle_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(query_error)?
                .ok_or_else(|| StoreError::Unfinished(format!("no battle '{}'", v.battle_id)))?;
                if votes > 0 {
                    return Err(StoreError::Conflict("this battle already has its vote".into()));
                }
                let rows: Vec<VoteRow> = sqlx::query_as(&format!(
                    "SELECT {VOTE_ROW_COLUMNS} FROM messages \
                     WHERE conversation_id IN ($1, $2) ORDER BY seq"
                ))
                .bind(&conversation_a)
                .bind(&conversation_b)
                .fetch_all(&mut *tx)
                .await
                .map_err(query_error)?;
                let sides = [conversation_a.as_str(), conversation_b.as_str()];
                if let Some(why) = refusal(v.turn, sides, &rows) {
                    return Err(StoreError::Unfinished(why));
                }
                let now = unix_ms() as i64;
                let signals =
                    voter_signals!(tx, v, now, answers_finished_ms(v.turn, sides, &rows));
                let outcome = VoteOutcome {
                    signals,
                    exclusion: v.exclusion.clone().or_else(|| judge(&signals, &v.winner, &v.limits)),
                };
                let exclusion = outcome.exclusion.as_ref();
                sqlx::query(
                    "INSERT INTO votes (id, battle_id, turn, winner, voter_hash, counted, \
                     excluded_reason, created_ms, conv_metadata, exclusion_rule, \
                     answer_to_vote_ms, client_votes_hour, same_side_streak) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
                )
                .bind(&v.id)
                .bind(&v.battle_id)
                .bind(v.turn)
                .bind(&v.winner)
                .bind(&v.voter_hash)
                .bind(outcome.counted())
                .bind(exclusion.map(|e| e.reason.as_str()))
                .bind(now)
                .bind(judged_metadata(v.turn, sides, &rows))
                .bind(exclusion.map(|e| e.rule.key()))
                .bind(signals.answer_to_vote_ms)
                .bind(signals.client_votes_hour)
                .bind(signals.same_side_streak)
                .execute(&mut *tx)
                .await
                .map_err(query_error)?;
                for category in &v.categories {
                    sqlx::query("INSERT INTO vote_categories (vote_id, category) VALUES ($1, $2)")
                        .bind(&v.id)
                        .bind(category)
                        .execute(&mut *tx)
                        .await
                        .map_err(query_error)?;
                }
                tx.commit().await.map_err(query_error)?;
                Ok(outcome)
            }

            async fn add_rating(&self, r: &NewRating) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO ratings (id, conversation_id, turn, rating, voter_hash, created_ms) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&r.id)
                .bind(&r.conversation_id)
                .bind(r.turn)
                .bind(&r.rating)
                .bind(&r.voter_hash)
                .bind(unix_ms() as i64)
                .execute(&self.pool)
                .await
                .map(|_| ())
                .map_err(query_error)
            }

            async fn add_flag(&self, f: &NewFlag) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO moderation_flags (id, conversation_id, battle_id, content, reason, \
                     source, client_hash, created_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(&f.id)
                .bind(&f.conversation_id)
                .bind(&f.battle_id)
                .bind(&f.content)
                .bind(&f.reason)
                .bind(&f.source)
                .bind(&f.client_hash)
                .bind(unix_ms() as i64)
                .execute(&self.pool)
                .await
                .map(|_| ())
                .map_err(query_error)
            }

            async fn model_stats(&self) -> Result<Vec<ModelStats>, StoreError> {
                let rows: Vec<(String, i64, i64, i64, i64, f64)> = sqlx::query_as(
                    "SELECT model, battles, wins, losses, ties, win_rate FROM model_win_rates \
                     ORDER BY win_rate DESC, battles DESC, model",
                )
                .fetch_all(&self.pool)
                .await
                .map_err(query_error)?;
                Ok(rows
                    .into_iter()
                    .map(|(model, battles, wins, losses, ties, win_rate)| ModelStats {
                        model,
                        battles,
                        wins,
                        losses,
                        ties,
                        win_rate,
                    })
                    .collect())
            }

            async fn last_vote_ms(&self) -> Result<i64, StoreError> {
                let (ms,): (i64,) =
                    sqlx::query_as("SELECT CAST(COALESCE(MAX(created_ms), 0) AS BIGINT) FROM votes")
                        .fetch_one(&self.pool)
                        .await
                        .map_err(query_error)?;
                Ok(ms)
            }

            async fn last_tag_ms(&self) -> Result<i64, StoreError> {
                let (ms,): (i64,) = sqlx::query_as(
                    "SELECT CAST(COALESCE(MAX(tagged_ms), 0) AS BIGINT) FROM vote_categories",
                )
                .fetch_one(&self.pool)
                .await
                .map_err(query_error)?;
                Ok(ms)
            }

            async fn excluded_votes(&self) -> Result<Vec<ExcludedVotes>, StoreError> {
                let rows: Vec<(String, i64)> = sqlx::query_as(
                    "SELECT COALESCE(v.exclusion_rule, 'other'), CAST(COUNT(*) AS BIGINT) \
                     FROM votes v JOIN battles b ON b.id = v.battle_id \
                     WHERE b.anonymous AND NOT v.counted GROUP BY 1 ORDER BY 2 DESC, 1",
                )
                .fetch_all(&self.pool)
                .await
                .map_err(query_error)?;
                Ok(rows.into_iter().map(|(rule, votes)| ExcludedVotes { rule, votes }).collect())
            }

            async fn counted_battles(
                &self,
                with_style: bool,
                category: Option<&str>,
                sink: Sink<'_, BattleRow>,
            ) -> Result<u64, StoreError> {
                let mut rows = sqlx::query_as::<_, (String, String, String, i64, Option<String>, Option<f64>)>(
                    "SELECT b.model_a, b.model_b, v.winner, v.created_ms, \
                     CASE WHEN $1 THEN v.conv_metadata END, b.pair_probability FROM votes v \
                     JOIN battles b ON b.id = v.battle_id WHERE b.anonymous AND v.counted \
                     AND ($2 IS NULL OR EXISTS (SELECT 1 FROM vote_categories c \
                     WHERE c.vote_id = v.id AND c.category = $2)) \
                     ORDER BY v.created_ms, v.id",
                )
                .bind(with_style)
                .bind(category)
                .fetch(&self.pool);
                let mut n = 0;
                while let Some(row) = rows.next().await {
                    let (model_a, model_b, winner, tstamp_ms, conv_metadata, pair_probability) =
                        row.map_err(query_error)?;
                    sink(BattleRow { model_a, model_b, winner, tstamp_ms, conv_metadata, pair_probability })?;
                    n += 1;
                }
                Ok(n)
            }

            async fn insert_counted_votes(&self, votes: &[CountedVote]) -> Result<(), StoreError> {
                let mut tx = self.pool.begin().await.map_err(query_error)?;
                for chunk in votes.chunks(VOTES_PER_STATEMENT) {
                    insert_counted_votes!(tx, chunk);
                }
                tx.commit().await.map_err(query_error)
            }

            async fn add_vote_categories(
                &self,
                vote_id: &str,
                categories: &[String],
            ) -> Result<(), StoreError> {
                let now = unix_ms() as i64;
                let mut tx = self.pool.begin().await.map_err(query_error)?;
                for category in categories {
                    sqlx::query(
                        "INSERT INTO vote_categories (vote_id, category, tagged_ms) \
                         VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                    )
                    .bind(vote_id)
                    .bind(category)
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(query_error)?;
                }
                tx.commit().await.map_err(query_error)
            }

            async fn category_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
                sqlx::query_as(
                    "SELECT c.category, CAST(COUNT(*) AS BIGINT) FROM vote_categories c \
                     JOIN votes v ON v.id = c.vote_id JOIN battles b ON b.id = v.battle_id \
                     WHERE b.anonymous AND v.counted GROUP BY c.category \
                     ORDER BY 2 DESC, c.category",
                )
                .fetch_all(&self.pool)
                .await
                .map_err(query_error)
            }

            async fn add_snapshot(
                &self,
                r: &SnapshotRecord,
                snapshot: &str,
            ) -> Result<bool, StoreError> {
                let done = sqlx::query(
                    "INSERT INTO leaderboard_snapshots (day, created_ms, votes, vote_set_sha256, \
                     snapshot) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                )
                .bind(&r.day)
                .bind(r.created_ms)
                .bind(r.votes)
                .bind(&r.vote_set_sha256)
                .bind(snapshot)
                .execute(&self.pool)
                .await
                .map_err(query_error)?;
                Ok(done.rows_affected() == 1)
            }

            async fn snapshots(&self, limit: i64) -> Result<Vec<SnapshotRecord>, StoreError> {
                let rows: Vec<(String, i64, i64, String)> = sqlx::query_as(
                    "SELECT day, created_ms, votes, vote_set_sha256 FROM leaderboard_snapshots \
                     ORDER BY day DESC LIMIT $1",
                )
                .bind(limit)
                .fetch_all(&self.pool)
                .await
                .map_err(query_error)?;
                Ok(rows
                    .into_iter()
                    .map(|(day, created_ms, votes, vote_set_sha256)| SnapshotRecord {
                        day,
                        created_ms,
                        votes,
                        vote_set_sha256,
                    })
                    .collect())
            }

            async fn snapshot(&self, day: &str) -> Result<Option<String>, StoreError> {
                let row: Option<(String,)> =
                    sqlx::query_as("SELECT snapshot FROM leaderboard_snapshots WHERE day = $1")
                        .bind(day)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(query_error)?;
                Ok(row.map(|(s,)| s))
            }

            async fn export_battles(
                &self,
                filter: ExportFilter,
                sink: Sink<'_, ExportBattle>,
            ) -> Result<u64, StoreError> {
                // One row per message, grouped by battle in order: memory holds one battle.
                let mut rows = sqlx::query_as::<
                    _,
                    (String, String, String, String, String, i64, bool, bool, i64, Option<String>, Option<f64>, Option<String>, String, String, String),
                >(
                    "SELECT v.battle_id, b.model_a, b.model_b, v.winner, v.voter_hash, v.turn, \
                     b.anonymous, v.counted, v.created_ms, v.conv_metadata, b.pair_probability, \
                     (SELECT string_agg(c.category, ',' ORDER BY c.category) FROM vote_categories c \
                     WHERE c.vote_id = v.id), \
                     CASE WHEN m.conversation_id = b.conversation_a THEN 'a' ELSE 'b' END, m.role, m.content \
                     FROM votes v JOIN battles b ON b.id = v.battle_id \
                     JOIN messages m ON (m.conversation_id = b.conversation_a OR m.conversation_id = b.conversation_b) \
                     AND NOT m.superseded WHERE ($1 OR v.counted) \
                     AND (NOT $2 OR NOT EXISTS (SELECT 1 FROM conversations c \
                     WHERE c.id IN (b.conversation_a, b.conversation_b) AND c.terms_version IS NULL)) \
                     ORDER BY v.created_ms, v.battle_id, 13, m.seq",
                )
                .bind(filter.all_votes)
                .bind(filter.accepted_terms_only)
                .fetch(&self.pool);
                let mut current: Option<ExportBattle> = None;
                let mut n = 0;
                while let Some(row) = rows.next().await {
                    let (id, model_a, model_b, winner, voter_hash, turn, anonymous, counted, tstamp_ms, conv_metadata, pair_probability, categories, side, role, content) =
                        row.map_err(query_error)?;
                    if current.as_ref().is_some_and(|c| c.battle_id != id) {
                        if let Some(done) = current.take() {
                            sink(done)?;
                            n += 1;
                        }
                    }
                    let battle = current.get_or_insert_with(|| ExportBattle {
                        battle_id: id,
                        model_a,
                        model_b,
                        winner,
                        voter_hash,
                        turn,
                        anonymous,
                        counted,
                        tstamp_ms,
                        conv_metadata,
                        pair_probability,
                        categories: categories
                            .map(|c| c.split(',').map(str::to_string).collect())
                            .unwrap_or_default(),
                        ..Default::default()
                    });
                    let conversation = if side == "a" { &mut battle.conversation_a } else { &mut battle.conversation_b };
                    conversation.push((role, content));
                }
                if let Some(done) = current {
                    sink(done)?;
                    n += 1;
                }
                Ok(n)
            }

            async fn export_conversations(
                &self,
                filter: ExportFilter,
                sink: Sink<'_, ExportConversation>,
            ) -> Result<u64, StoreError> {
                let mut rows = sqlx::query_as::<_, (String, String, String, String, String)>(
                    "SELECT c.id, c.model, c.mode, m.role, m.content FROM conversations c \
                     JOIN messages m ON m.conversation_id = c.id AND NOT m.superseded \
                     WHERE (NOT $1 OR c.terms_version IS NOT NULL) \
                     ORDER BY c.created_ms, c.id, m.seq",
                )
                .bind(filter.accepted_terms_only)
                .fetch(&self.pool);
                let mut current: Option<ExportConversation> = None;
                let mut n = 0;
                while let Some(row) = rows.next().await {
                    let (id, model, mode, role, content) = row.map_err(query_error)?;
                    if current.as_ref().is_some_and(|c| c.id != id) {
                        if let Some(done) = current.take() {
                            sink(done)?;
                            n += 1;
                        }
                    }
                    current
                        .get_or_insert_with(|| ExportConversation { id, model, mode, ..Default::default() })
                        .messages
                        .push((role, content));
                }
                if let Some(done) = current {
                    sink(done)?;
                    n += 1;
                }
                Ok(n)
            }
        }
    };
}

arena_store_sql!(PostgresStore, "postgres");
arena_store_sql!(SqliteStore, "sqlite");
