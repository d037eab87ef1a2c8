//! The leaderboard as the arena serves it: ratings from the store's counted votes, cached and
//! recomputed when votes arrive (at most every interval), shared through Redis between
//! replicas. The `arena leaderboard` command is in `leaderboard_cli`.

use std::sync::Arc;
use std::time::Duration;

use arena_ratings::{Aggregate, Leaderboard, RatingOptions};
use arena_store::{ArenaStore, ModelStats};
use redis::aio::ConnectionManager;
use redis::AsyncCommands;
use serde_json::{json, Value};

use super::catalog::Catalog;
use crate::error::ControllerError;

pub use super::leaderboard_cli::{parse_anchor, run_cli, Listing, OutputFormat, Snapshots, Source};

/// Folds the store's counted anonymous votes, in the order they were cast, into an aggregate.
/// A vote the ratings refuse is the error, as it is, not a store error.
pub async fn aggregate_store(
    store: &dyn ArenaStore,
    category: Option<&str>,
) -> Result<Aggregate, ControllerError> {
    arena_store::ratings::counted_aggregate(store, category)
        .await?
        .map_err(ControllerError::Ratings)
}

/// Ratings off the async threads: a bootstrap keeps every core busy for a moment.
pub(super) async fn compute(
    agg: Aggregate,
    opts: RatingOptions,
) -> Result<Leaderboard, ControllerError> {
    tokio::task::spawn_blocking(move || arena_ratings::compute(&agg, &opts))
        .await
        .map_err(|e| ControllerError::Leaderboard(format!("the ratings task failed: {e}")))?
        .map_err(ControllerError::from)
}

/// The `/api/leaderboard` body: the ratings rows with each model's win/loss/tie counts, the
/// two matrices, and what they were computed from.
pub fn leaderboard_json(board: &Leaderboard, stats: &[ModelStats], computed_ms: i64) -> Value {
    let models: Vec<Value> = board
        .rows
        .iter()
        .map(|row| {
            let mut v = json!(row);
            if let Some(s) = stats.iter().find(|s| s.model == row.model) {
                v["wins"] = json!(s.wins);
                v["losses"] = json!(s.losses);
                v["ties"] = json!(s.ties);
                v["win_rate"] = json!(s.win_rate);
            }
            v
        })
        .collect();
    json!({
        "models": models,
        "win_fraction": {"models": board.models, "values": board.win_fraction},
        "battle_counts": {"models": board.models, "values": board.battle_counts},
        "votes": board.battles,
        "method": board.method,
        "ci": board.ci,
        "bootstrap_rounds": board.bootstrap_rounds,
        "intervals": arena_ratings::describe(board),
        "min_battles": board.min_battles,
        "fallback_l2": board.fallback_l2,
        "style_coefficients": board.style_coefficients,
        "computed_ms": computed_ms,
    })
}

/// Which leaderboard: `?style_control=true` asks for the style-controlled one,
/// `?category=C` for the votes of one category.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct View {
    /// arena-rank's contextual model over both answers' length and markdown.
    #[serde(default)]
    pub style_control: bool,
    /// Only the votes of battles in this category.
    #[serde(default)]
    pub category: Option<String>,
}

impl View {
    /// Its key in Redis.
    fn redis_key(&self) -> String {
        let mut key = REDIS_KEY.to_string();
        if self.style_control {
            key.push_str(":style");
        }
        if let Some(c) = &self.category {
            key.push_str(":category:");
            key.push_str(c);
        }
        key
    }

    /// The error for a category name that cannot be one, before it reaches the store.
    pub fn check(&self) -> Result<(), String> {
        match &self.category {
            Some(c) if !arena_ratings::category::valid_name(c) => Err(format!(
                "'category' must be 1 to 40 lower-case letters, digits or '_' (e.g. coding); got '{}'",
                c.chars().take(60).collect::<String>()
            )),
            _ => Ok(()),
        }
    }
}

/// The style-controlled options: arena-rank's contextual dataset reweights by default.
pub(super) fn style_options(options: &RatingOptions) -> RatingOptions {
    RatingOptions {
        reweight: options.reweight.or(Some(arena_ratings::MIN_PAIR_COUNT)),
        ..options.clone()
    }
}

/// The style-controlled leaderboard of the store's counted votes whose style is known, and
/// how many counted votes had none.
pub async fn styled_board(
    store: &dyn ArenaStore,
    options: &RatingOptions,
    category: Option<&str>,
) -> Result<(Leaderboard, u64), ControllerError> {
    let votes = arena_store::ratings::counted_styled(store, category).await?;
    let options = options.clone();
    let board = tokio::task::spawn_blocking(move || {
        arena_ratings::compute_style_controlled(&votes.battles, &options)
    })
    .await
    .map_err(|e| ControllerError::Leaderboard(format!("the ratings task failed: {e}")))??;
    Ok((board, votes.without_style))
}

/// What a leaderboard counts, as of one moment: the newest vote and the newest late category
/// tag (the hard-prompt labeller answers after the vote, and its tag must show without waiting
/// for the next vote).
#[derive(Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Version {
    last_vote_ms: i64,
    last_tag_ms: i64,
}

impl Version {
    /// The store's version now.
    async fn of(store: &dyn ArenaStore) -> Result<Self, ControllerError> {
        Ok(Self {
            last_vote_ms: store.last_vote_ms().await?,
            last_tag_ms: store.last_tag_ms().await?,
        })
    }
}

/// A computed leaderboard and the votes it reflects.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct Cached {
    /// The store's version when it was computed.
    version: Version,
    /// When it was computed, Unix milliseconds.
    computed_ms: i64,
    /// The response body.
    body: Arc<Value>,
}

/// The Redis key replicas share the leaderboard under.
const REDIS_KEY: &str = "arena:leaderboard";

/// The cached leaderboard of one controller.
pub struct LeaderboardCache {
    store: Arc<dyn ArenaStore>,
    redis: Option<ConnectionManager>,
    min_interval: Duration,
    options: RatingOptions,
    catalog: Arc<Catalog>,
    category_min_battles: u64,
    daily_snapshots: bool,
    // The UTC day whose snapshot is known to be kept, so most computations skip the check.
    snapshot_day: std::sync::Mutex<Option<String>>,
    provisional_votes: u64,
    // One recomputation at a time; waiters then find it fresh.
    cached: tokio::sync::Mutex<std::collections::HashMap<View, Cached>>,
}

impl LeaderboardCache {
    /// A cache recomputing at most every `min_interval`, shared through `redis` when given.
    pub fn new(
        store: Arc<dyn ArenaStore>,
        redis: Option<ConnectionManager>,
        min_interval: Duration,
        options: RatingOptions,
    ) -> Self {
        Self {
            store,
            redis,
            min_interval,
            options,
            catalog: Arc::default(),
            category_min_battles: crate::config::DEFAULT_CATEGORY_MIN_BATTLES,
            daily_snapshots: true,
            snapshot_day: std::sync::Mutex::new(None),
            provisional_votes: 0,
            cached: tokio::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }

    /// The same cache, listing on a category's board only models with at least `min` battles
    /// in it.
    pub fn with_category_min_battles(self, min: u64) -> Self {
        Self {
            category_min_battles: min,
            ..self
        }
    }

    /// The same cache, keeping (or not) a snapshot of the leaderboard each UTC day.
    pub fn with_daily_snapshots(self, on: bool) -> Self {
        Self {
            daily_snapshots: on,
            ..self
        }
    }

    /// The same cache, adding each model's catalog info to its row.
    pub fn with_catalog(self, catalog: Arc<Catalog>) -> Self {
        Self { catalog, ..self }
    }

    /// The same cache, marking models with fewer counted votes `provisional`.
    pub fn with_provisional_votes(self, provisional_votes: u64) -> Self {
        Self {
            provisional_votes,
            ..self
        }
    }

    fn fresh(&self, c: &Cached, version: Version, now_ms: i64) -> bool {
        c.version == version || now_ms - c.computed_ms < self.min_interval.as_millis() as i64
    }

    async fn shared(&self, view: &View) -> Option<Cached> {
        let mut conn = self.redis.clone()?;
        let text: Option<String> = conn
            .get(view.redis_key())
            .await
            .map_err(|e| tracing::warn!("leaderboard cache: redis read failed: {e}"))
            .ok()?;
        serde_json::from_str(&text?).ok()
    }

    async fn share(&self, view: &View, c: &Cached) {
        let (Some(mut conn), Ok(text)) = (self.redis.clone(), serde_json::to_string(c)) else {
            return;
        };
        let written: redis::RedisResult<()> = conn.set(view.redis_key(), text).await;
        if let Err(e) = written {
            tracing::warn!("leaderboard cache: redis write failed: {e}");
        }
    }

    /// Computes the leaderboard `view` from the store.
    async fn compute_view(&self, view: &View, now: i64) -> Result<Value, ControllerError> {
        let category = view.category.as_deref();
        let categories = self.store.category_counts().await?;
        if let Some(c) = category {
            if !categories.iter().any(|(name, _)| name == c) {
                return Err(ControllerError::UnknownCategory(format!(
                    "no counted votes in category '{c}'; categories with votes: {}",
                    if categories.is_empty() {
                        "none yet".to_string()
                    } else {
                        categories
                            .iter()
                            .map(|(n, _)| n.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                )));
            }
        }
        // The win/loss totals are over all counted votes: a category board shows none; a
        // model is provisional by its votes in all categories.
        let all_stats = self.store.model_stats().await?;
        let stats = match category {
            None => all_stats.clone(),
            Some(_) => Vec::new(),
        };
        let (mut board, without_style) = if view.style_control {
            let (board, without) =
                styled_board(&*self.store, &style_options(&self.options), category).await?;
            (board, Some(without))
        } else {
            let agg = aggregate_store(&*self.store, category).await?;
            let due = category.is_none() && agg.battles() > 0 && self.snapshot_due(now);
            let snapshot_agg = due.then(|| agg.clone());
            let board = compute(agg, self.options.clone()).await?;
            if let Some(agg) = snapshot_agg {
                self.keep_snapshot(&agg, &board, now).await;
            }
            (board, None)
        };
        let hidden = match category {
            Some(_) => board.only_models_with(self.category_min_battles),
            None => 0,
        };
        let mut body = leaderboard_json(&board, &stats, now);
        super::provisional::mark(&mut body, &all_stats, self.provisional_votes);
        body["style_control"] = json!(view.style_control);
        if let Some(without) = without_style {
            body["without_style"] = json!(without);
        }
        body["category"] = json!(category);
        body["snapshot"] = json!(self.store.snapshots(1).await?.first());
        body["categories"] = categories
            .iter()
            .map(|(name, votes)| json!({"name": name, "votes": votes}))
            .collect();
        if category.is_some() {
            body["category_min_battles"] = json!(self.category_min_battles);
            body["hidden_models"] = json!(hidden);
        }
        Ok(self.catalog.annotate_leaderboard(body))
    }

    /// Whether today (UTC) may still lack its snapshot, as far as this controller knows.
    fn snapshot_due(&self, now: i64) -> bool {
        let today = arena_ratings::clock::utc_day(now as u64);
        self.daily_snapshots
            && self
                .snapshot_day
                .lock()
                .map_or(true, |d| d.as_deref() != Some(today.as_str()))
    }

    /// Keeps today's snapshot of the plain leaderboard unless another replica (or this one)
    /// already did: the first board computed with votes each UTC day.
    async fn keep_snapshot(&self, agg: &Aggregate, board: &Leaderboard, now: i64) {
        use arena_ratings::snapshot::{Snapshot, View, VoteSet};
        let votes = VoteSet::of(agg, &self.options);
        let snap = Snapshot::new(&votes, &self.options, &View::default(), board);
        let day = arena_ratings::clock::utc_day(now as u64);
        let record = arena_store::SnapshotRecord {
            day: day.clone(),
            created_ms: now,
            votes: snap.battles as i64,
            vote_set_sha256: snap.vote_set_sha256.clone(),
        };
        let kept = match serde_json::to_string_pretty(&snap) {
            Ok(text) => self.store.add_snapshot(&record, &text).await,
            Err(e) => {
                tracing::warn!("daily snapshot: {e}");
                return;
            }
        };
        match kept {
            Ok(kept) => {
                if kept {
                    tracing::info!(
                        "daily leaderboard snapshot {day}: {} votes, sha256 {}",
                        record.votes,
                        record.vote_set_sha256
                    );
                }
                if let Ok(mut d) = self.snapshot_day.lock() {
                    *d = Some(day);
                }
            }
            Err(e) => tracing::warn!("daily snapshot: {e}"),
        }
    }

    /// The leaderboard `view`: the cached one while no vote or late tag arrived or the
    /// interval has not passed, else recomputed from the store.
    pub async fn get(&self, view: &View) -> Result<Arc<Value>, ControllerError> {
        let version = Version::of(&*self.store).await?;
        let now = arena_ratings::clock::unix_ms() as i64;
        let mut cached = self.cached.lock().await;
        if let Some(c) = cached.get(view).filter(|c| self.fresh(c, version, now)) {
            return Ok(c.body.clone());
        }
        if let Some(c) = self
            .shared(view)
            .await
            .filter(|c| self.fresh(c, version, now))
        {
            let body = c.body.clone();
            cached.insert(view.clone(), c);
            return Ok(body);
        }
        let mut body = self.compute_view(view, now).await?;
        body["excluded"] = super::exclusions::excluded_json(&*self.store).await?;
        let c = Cached {
            version,
            computed_ms: now,
            body: Arc::new(body),
        };
        self.share(view, &c).await;
        let body = c.body.clone();
        cached.insert(view.clone(), c);
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_vote_the_ratings_refuse_is_a_ratings_error() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("a.db").display());
        let store = arena_store::connect(&url).await.unwrap();
        // Written straight into the tables: the arena itself never pairs a model with itself.
        let vote = arena_store::CountedVote::plain("v", "same", "same", "model_a", 1);
        store.insert_counted_votes(&[vote]).await.unwrap();
        let e = aggregate_store(&*store, None).await.unwrap_err();
        assert!(
            matches!(
                e,
                ControllerError::Ratings(arena_ratings::RatingsError::SelfBattle { .. })
            ),
            "{e:?}"
        );
        assert_eq!(e.to_string(), "ratings: a battle of 'same' against itself");
    }

    #[tokio::test]
    async fn a_tag_added_after_the_vote_shows_without_waiting_for_another_vote() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("a.db").display());
        let store = arena_store::connect(&url).await.unwrap();
        let votes: Vec<_> = (0..4)
            .map(|i| {
                let winner = if i % 2 == 0 { "model_a" } else { "model_b" };
                arena_store::CountedVote::plain(&format!("v{i}"), "a", "b", winner, i + 1)
            })
            .collect();
        store.insert_counted_votes(&votes).await.unwrap();
        // No least interval between recomputations: only a new version of the votes
        // refreshes it.
        let cache = LeaderboardCache::new(
            store.clone(),
            None,
            Duration::ZERO,
            RatingOptions::default(),
        )
        .with_category_min_battles(1)
        .with_daily_snapshots(false);
        let names = |board: &Value| -> Vec<String> {
            board["categories"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["name"].as_str().unwrap().to_string())
                .collect()
        };
        let view = View::default();
        assert!(names(&cache.get(&view).await.unwrap()).is_empty());
        // Cached while nothing changed.
        assert!(Arc::ptr_eq(
            &cache.get(&view).await.unwrap(),
            &cache.get(&view).await.unwrap()
        ));
        store
            .add_vote_categories("v1", &["hard_prompt".to_string()])
            .await
            .unwrap();
        assert_eq!(names(&cache.get(&view).await.unwrap()), ["hard_prompt"]);
    }
}
