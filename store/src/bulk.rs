//! Counted votes written straight into the tables, many rows per statement: how the
//! leaderboard benchmark fills a store with a million votes (`arena bench leaderboard
//! --store`). No vote-time check runs; every row is as `add_vote` would have left it for a
//! counted anonymous vote, so the ratings read them exactly as they read real ones.

use arena_ratings::bench::{battles, conv_metadata, model_name};

use crate::{ArenaStore, StoreError};

/// Votes per transaction when filling a store.
const VOTES_PER_TRANSACTION: usize = 20_000;

/// Fills `store`, which must have no votes yet, with `n` of the leaderboard benchmark's
/// synthetic battles among `models` models (`arena_ratings::bench::battles`, the same ones the
/// benchmark rates in memory and writes to files with that seed), each a counted anonymous
/// vote with its style, categories and pair probability. Returns the votes written.
pub async fn fill_with_synthetic(
    store: &dyn ArenaStore,
    n: u64,
    models: usize,
    seed: u64,
) -> Result<u64, StoreError> {
    if store.last_vote_ms().await? != 0 {
        return Err(StoreError::Config(
            "the store already has votes; fill an empty one so the benchmark rates exactly \
             its own battles"
                .into(),
        ));
    }
    let synthetic = battles(n, models, seed).map_err(|e| StoreError::Config(e.to_string()))?;
    let names: Vec<String> = (0..models).map(model_name).collect();
    let mut chunk = Vec::with_capacity(VOTES_PER_TRANSACTION);
    let mut written = 0;
    for (k, b) in synthetic.enumerate() {
        chunk.push(CountedVote {
            id: format!("bench-{k:08}"),
            model_a: names[b.a as usize].clone(),
            model_b: names[b.b as usize].clone(),
            winner: b.winner.as_str().to_string(),
            voter_hash: format!("bench-voter-{}", k % 10_000),
            created_ms: (b.tstamp * 1000.0) as i64,
            conv_metadata: Some(conv_metadata(&b).to_string()),
            pair_probability: Some(b.pair_probability),
            categories: b.categories.iter().map(|c| c.to_string()).collect(),
        });
        if chunk.len() == VOTES_PER_TRANSACTION {
            store.insert_counted_votes(&chunk).await?;
            written += chunk.len() as u64;
            chunk.clear();
        }
    }
    store.insert_counted_votes(&chunk).await?;
    Ok(written + chunk.len() as u64)
}

/// A counted anonymous vote with its battle (`ArenaStore::insert_counted_votes`).
#[derive(Debug, Clone, PartialEq)]
pub struct CountedVote {
    /// Id of the vote; its battle is `{id}`, its conversations `{id}-a` and `{id}-b`.
    pub id: String,
    /// Model on side A.
    pub model_a: String,
    /// Model on side B.
    pub model_b: String,
    /// `model_a`, `model_b`, `tie` or `tie (bothbad)`.
    pub winner: String,
    /// Salted hash of the voter.
    pub voter_hash: String,
    /// When it was cast, Unix ms.
    pub created_ms: i64,
    /// What it judged, in the public dataset's `conv_metadata` shape (JSON).
    pub conv_metadata: Option<String>,
    /// The probability its battle's pair was drawn with.
    pub pair_probability: Option<f64>,
    /// Its category tags.
    pub categories: Vec<String>,
}

impl CountedVote {
    /// A vote of `model_a` against `model_b` with no style, categories or probability, cast
    /// at `created_ms` by voter `h`.
    pub fn plain(id: &str, model_a: &str, model_b: &str, winner: &str, created_ms: i64) -> Self {
        Self {
            id: id.into(),
            model_a: model_a.into(),
            model_b: model_b.into(),
            winner: winner.into(),
            voter_hash: "h".into(),
            created_ms,
            conv_metadata: None,
            pair_probability: None,
            categories: Vec::new(),
        }
    }
}

/// Votes per statement: the largest statement (two conversations a vote, five values each)
/// stays far below SQLite's 32,766 and Postgres's 65,535 bound values.
pub(crate) const VOTES_PER_STATEMENT: usize = 1000;

/// Inserts `$votes` (at most `VOTES_PER_STATEMENT`) with their battles, conversations and
/// categories in the transaction `$tx`.
macro_rules! insert_counted_votes {
    ($tx:expr, $votes:expr) => {{
        let votes: &[$crate::CountedVote] = $votes;
        let mut q = sqlx::QueryBuilder::new(
            "INSERT INTO conversations (id, mode, model, client_hash, created_ms) ",
        );
        q.push_values(
            votes
                .iter()
                .flat_map(|v| [(v, "a", &v.model_a), (v, "b", &v.model_b)]),
            |mut row, (v, side, model)| {
                row.push_bind(format!("{}-{side}", v.id))
                    .push_bind("battle")
                    .push_bind(model.clone())
                    .push_bind(v.voter_hash.clone())
                    .push_bind(v.created_ms);
            },
        );
        q.build().execute(&mut *$tx).await.map_err(query_error)?;
        let mut q = sqlx::QueryBuilder::new(
            "INSERT INTO battles (id, model_a, model_b, anonymous, conversation_a, \
             conversation_b, client_hash, created_ms, pair_probability) ",
        );
        q.push_values(votes, |mut row, v| {
            row.push_bind(v.id.clone())
                .push_bind(v.model_a.clone())
                .push_bind(v.model_b.clone())
                .push_bind(true)
                .push_bind(format!("{}-a", v.id))
                .push_bind(format!("{}-b", v.id))
                .push_bind(v.voter_hash.clone())
                .push_bind(v.created_ms)
                .push_bind(v.pair_probability);
        });
        q.build().execute(&mut *$tx).await.map_err(query_error)?;
        let mut q = sqlx::QueryBuilder::new(
            "INSERT INTO votes (id, battle_id, turn, winner, voter_hash, counted, created_ms, \
             conv_metadata) ",
        );
        q.push_values(votes, |mut row, v| {
            row.push_bind(v.id.clone())
                .push_bind(v.id.clone())
                .push_bind(1_i64)
                .push_bind(v.winner.clone())
                .push_bind(v.voter_hash.clone())
                .push_bind(true)
                .push_bind(v.created_ms)
                .push_bind(v.conv_metadata.clone());
        });
        q.build().execute(&mut *$tx).await.map_err(query_error)?;
        let tags: Vec<(&String, &String)> = votes
            .iter()
            .flat_map(|v| v.categories.iter().map(move |c| (&v.id, c)))
            .collect();
        if !tags.is_empty() {
            let mut q = sqlx::QueryBuilder::new("INSERT INTO vote_categories (vote_id, category) ");
            q.push_values(tags, |mut row, (id, category)| {
                row.push_bind(id.clone()).push_bind(category.clone());
            });
            q.build().execute(&mut *$tx).await.map_err(query_error)?;
        }
    }};
}
