//! The arena's store: conversations, messages, battles, votes, ratings, moderation flags and
//! the answers and judgments of `arena eval`,
//! in Postgres (production, several replicas) or an SQLite file (the zero-set-up default),
//! behind one trait. Both backends share one schema, one set of analyst views and one set of
//! queries (`sql.rs`); only the migrations directory differs.
#![forbid(unsafe_code)]

mod backends;
// Before `sql`, whose insert_counted_votes uses its macro.
#[macro_use]
mod bulk;
mod error;
mod eval;
pub mod export;
pub mod ratings;
pub mod signals;
// Before `sql`, whose add_vote uses its macro.
#[macro_use]
mod voter;
mod sql;
mod vote;

use std::sync::Arc;

pub use backends::{PostgresStore, SqliteStore};
pub use bulk::{fill_with_synthetic, CountedVote};
pub use error::StoreError;
pub use eval::{EvalAnswer, EvalJudgment, EvalLedger, EvalRun, JudgmentFilter};
pub use signals::{ExcludedVotes, Exclusion, ExclusionRule, VoteLimits, VoteOutcome, VoteSignals};

/// A new anonymous or named battle: the battle row and its two conversations.
#[derive(Debug, Clone)]
pub struct NewBattle {
    /// Battle id.
    pub id: String,
    /// Model on side A.
    pub model_a: String,
    /// Model on side B.
    pub model_b: String,
    /// Names hidden until the vote.
    pub anonymous: bool,
    /// Conversation id of side A.
    pub conversation_a: String,
    /// Conversation id of side B.
    pub conversation_b: String,
    /// Salted hash of the client.
    pub client_hash: String,
    /// Version of the terms of use the client had accepted, stored with both conversations;
    /// None when it had accepted none.
    pub terms_version: Option<String>,
    /// The probability with which an anonymous battle's unordered pair was drawn; None for
    /// named battles.
    pub pair_probability: Option<f64>,
}

/// A stored battle and whether it has been voted on.
#[derive(Debug, Clone, PartialEq)]
pub struct BattleRecord {
    /// Battle id.
    pub id: String,
    /// Model on side A.
    pub model_a: String,
    /// Model on side B.
    pub model_b: String,
    /// Names hidden until the vote.
    pub anonymous: bool,
    /// Conversation id of side A.
    pub conversation_a: String,
    /// Conversation id of side B.
    pub conversation_b: String,
    /// Votes cast on it (0 or 1: a vote closes the battle).
    pub votes: i64,
}

/// A stored conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct ConversationRecord {
    /// Conversation id.
    pub id: String,
    /// `battle` or `direct`.
    pub mode: String,
    /// The model answering in it.
    pub model: String,
    /// Version of the terms of use the client had accepted when it began; None when none.
    pub terms_version: Option<String>,
}

/// One message to store.
#[derive(Debug, Clone, Default)]
pub struct NewMessage {
    /// Conversation it belongs to.
    pub conversation_id: String,
    /// Position among all the conversation's rows, superseded ones included; unique.
    pub seq: i64,
    /// User turn it belongs to, from 1.
    pub turn: i64,
    /// `user` or `assistant`.
    pub role: &'static str,
    /// Its text.
    pub content: String,
    /// The answering model (assistant messages).
    pub model: Option<String>,
    /// Prompt tokens as counted by the model.
    pub prompt_tokens: Option<i64>,
    /// Generated tokens.
    pub completion_tokens: Option<i64>,
    /// Milliseconds from dispatch to the last token.
    pub latency_ms: Option<i64>,
    /// Milliseconds from dispatch to the first token.
    pub ttft_ms: Option<i64>,
    /// `stop` or `length` (complete), `error`, `interrupted` (the client left or the
    /// controller stopped), or `generating` while it is being written.
    pub finish_reason: Option<String>,
    /// What went wrong, when `finish_reason` is `error` or `interrupted`.
    pub error: Option<String>,
    /// While `generating`: until when (Unix ms) the answer counts as alive.
    pub lease_ms: Option<i64>,
}

/// Finish reasons of a complete answer, the only ones a vote may judge.
pub const COMPLETE: [&str; 2] = ["stop", "length"];

/// The finish reason of an answer still being written.
pub const GENERATING: &str = "generating";

/// The finish reason of an answer cut short by a disconnect or a crash.
pub const INTERRUPTED: &str = "interrupted";

/// A new turn or a regeneration, written in one transaction.
#[derive(Debug, Clone, Default)]
pub struct OpenTurn {
    /// The battle, locked for the transaction and required to have no vote.
    pub battle_id: Option<String>,
    /// Conversations whose answers to `turn` are superseded first (a regeneration).
    pub supersede: Vec<(String, i64)>,
    /// The user messages and the answers being generated.
    pub rows: Vec<NewMessage>,
}

/// The latest state of an answer being generated, or its end.
#[derive(Debug, Clone, Default)]
pub struct AnswerUpdate {
    /// Its conversation.
    pub conversation_id: String,
    /// Its position.
    pub seq: i64,
    /// The text so far.
    pub content: String,
    /// `None` while it is still being generated, with a renewed lease.
    pub finished: Option<Finished>,
    /// While generating: the new lease (Unix ms).
    pub lease_ms: i64,
}

/// How an answer ended.
#[derive(Debug, Clone, Default)]
pub struct Finished {
    /// Prompt tokens as counted by the model.
    pub prompt_tokens: Option<i64>,
    /// Generated tokens.
    pub completion_tokens: Option<i64>,
    /// Milliseconds from dispatch to the last token.
    pub latency_ms: Option<i64>,
    /// Milliseconds from dispatch to the first token.
    pub ttft_ms: Option<i64>,
    /// `stop`, `length`, `error` or `interrupted`.
    pub finish_reason: String,
    /// What went wrong.
    pub error: Option<String>,
}

/// A stored message.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageRecord {
    /// Position among the conversation's rows.
    pub seq: i64,
    /// User turn, from 1.
    pub turn: i64,
    /// `user` or `assistant`.
    pub role: String,
    /// Its text.
    pub content: String,
    /// How an answer ended.
    pub finish_reason: Option<String>,
    /// Replaced by a regeneration.
    pub superseded: bool,
    /// While `generating`: until when (Unix ms) the answer counts as alive.
    pub lease_ms: Option<i64>,
}

impl MessageRecord {
    /// An answer still being generated by a live controller at `now_ms`.
    pub fn in_flight(&self, now_ms: i64) -> bool {
        self.finish_reason.as_deref() == Some(GENERATING)
            && self.lease_ms.is_some_and(|l| l > now_ms)
    }

    /// A complete answer (`stop` or `length`).
    pub fn complete(&self) -> bool {
        self.finish_reason
            .as_deref()
            .is_some_and(|f| COMPLETE.contains(&f))
    }
}

/// A vote to store.
#[derive(Debug, Clone)]
pub struct NewVote {
    /// Vote id.
    pub id: String,
    /// The battle voted on.
    pub battle_id: String,
    /// The turn voted on.
    pub turn: i64,
    /// `model_a`, `model_b`, `tie` or `tie (bothbad)`.
    pub winner: String,
    /// Salted hash of the voter.
    pub voter_hash: String,
    /// Why it does not count, when the caller already knows (an answer's error, an identity
    /// leak, names shown); None leaves the decision to the client rules of `limits`.
    pub exclusion: Option<Exclusion>,
    /// Thresholds of the client rules, applied to the signals measured with the vote.
    pub limits: VoteLimits,
    /// The leaderboard categories of its battle.
    pub categories: Vec<String>,
}

/// A direct-chat rating to store.
#[derive(Debug, Clone)]
pub struct NewRating {
    /// Rating id.
    pub id: String,
    /// The rated conversation.
    pub conversation_id: String,
    /// The rated turn.
    pub turn: i64,
    /// `upvote`, `downvote` or `flag`.
    pub rating: String,
    /// Salted hash of the voter.
    pub voter_hash: String,
}

/// A refused input to record.
#[derive(Debug, Clone)]
pub struct NewFlag {
    /// Flag id.
    pub id: String,
    /// Direct-chat conversation, if any.
    pub conversation_id: Option<String>,
    /// Battle, if any.
    pub battle_id: Option<String>,
    /// The refused text.
    pub content: String,
    /// Why it was refused.
    pub reason: String,
    /// Which check refused it (`local`, `remote`).
    pub source: String,
    /// Salted hash of the client.
    pub client_hash: String,
}

/// Totals of one model over counted anonymous votes (the `model_win_rates` view).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ModelStats {
    /// Model name.
    pub model: String,
    /// Counted votes it took part in.
    pub battles: i64,
    /// Wins.
    pub wins: i64,
    /// Losses.
    pub losses: i64,
    /// Ties of either kind.
    pub ties: i64,
    /// Wins plus half the ties, over battles.
    pub win_rate: f64,
}

/// One counted anonymous vote, as the ratings read it.
#[derive(Debug, Clone, PartialEq)]
pub struct BattleRow {
    /// Model on side A.
    pub model_a: String,
    /// Model on side B.
    pub model_b: String,
    /// `model_a`, `model_b`, `tie` or `tie (bothbad)`.
    pub winner: String,
    /// When the vote was cast, Unix milliseconds.
    pub tstamp_ms: i64,
    /// What the vote judged (`conv_metadata` JSON), when asked for and recorded.
    pub conv_metadata: Option<String>,
    /// The probability with which the battle's pair was drawn, when recorded.
    pub pair_probability: Option<f64>,
}

/// A vote with both conversations, for the Chatbot Arena export.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExportBattle {
    /// Battle id.
    pub battle_id: String,
    /// Model on side A.
    pub model_a: String,
    /// Model on side B.
    pub model_b: String,
    /// The vote.
    pub winner: String,
    /// Salted hash of the voter.
    pub voter_hash: String,
    /// The turn voted on.
    pub turn: i64,
    /// Whether the names were hidden.
    pub anonymous: bool,
    /// Whether the vote counts for the leaderboard.
    pub counted: bool,
    /// When the vote was cast, Unix milliseconds.
    pub tstamp_ms: i64,
    /// Both answers' length and markdown counts (`conv_metadata` JSON); None before they
    /// were recorded.
    pub conv_metadata: Option<String>,
    /// The probability its pair was drawn with (anonymous battles since it was recorded).
    pub pair_probability: Option<f64>,
    /// Its category tags, sorted (votes since they were tagged).
    pub categories: Vec<String>,
    /// Side A's current messages as (role, content).
    pub conversation_a: Vec<(String, String)>,
    /// Side B's current messages as (role, content).
    pub conversation_b: Vec<(String, String)>,
}

/// A conversation for the ShareGPT export.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExportConversation {
    /// Conversation id.
    pub id: String,
    /// The answering model.
    pub model: String,
    /// `battle` or `direct`.
    pub mode: String,
    /// Its current messages as (role, content).
    pub messages: Vec<(String, String)>,
}

/// Which rows an export leaves out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportFilter {
    /// Votes too that do not count for the leaderboard (battles only).
    pub all_votes: bool,
    /// Only conversations begun under accepted terms of use, and only votes on battles
    /// whose two conversations both were: the others' users never agreed to publication.
    pub accepted_terms_only: bool,
}

/// A stored daily leaderboard snapshot, without its body.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SnapshotRecord {
    /// Its UTC day, `YYYY-MM-DD`.
    pub day: String,
    /// When it was taken, Unix milliseconds.
    pub created_ms: i64,
    /// Votes it rates.
    pub votes: i64,
    /// SHA-256 of its exact vote set.
    pub vote_set_sha256: String,
}

/// Receives streamed rows; an error stops the stream.
pub type Sink<'a, T> = &'a mut (dyn FnMut(T) -> Result<(), StoreError> + Send);

/// Where the arena keeps everything (the judge's ledger of `arena eval` included).
#[async_trait::async_trait]
pub trait ArenaStore: EvalLedger + Send + Sync {
    /// `postgres` or `sqlite`.
    fn backend(&self) -> &'static str;
    /// Fails when the database cannot be reached.
    async fn ping(&self) -> Result<(), StoreError>;
    /// Stores a battle with its two empty conversations.
    async fn create_battle(&self, battle: &NewBattle) -> Result<(), StoreError>;
    /// A battle by id.
    async fn battle(&self, id: &str) -> Result<Option<BattleRecord>, StoreError>;
    /// Stores a direct-chat conversation, with the version of the terms of use its client
    /// had accepted (None: none).
    async fn create_chat(
        &self,
        id: &str,
        model: &str,
        client_hash: &str,
        terms_version: Option<&str>,
    ) -> Result<(), StoreError>;
    /// A conversation by id.
    async fn conversation(&self, id: &str) -> Result<Option<ConversationRecord>, StoreError>;
    /// Every message of a conversation in order, superseded ones included.
    async fn messages(&self, conversation_id: &str) -> Result<Vec<MessageRecord>, StoreError>;
    /// Appends messages atomically; a taken `seq` is `Conflict` (someone else added first).
    async fn add_messages(&self, messages: &[NewMessage]) -> Result<(), StoreError>;
    /// Starts a turn or a regeneration atomically: the battle (if any) is locked and must
    /// have no vote (`Closed`), answers are superseded, rows inserted; a taken `seq` is
    /// `Conflict`.
    async fn open_turn(&self, turn: &OpenTurn) -> Result<(), StoreError>;
    /// Saves an answer's progress (renewing its lease) or its end.
    async fn update_answer(&self, update: &AnswerUpdate) -> Result<(), StoreError>;
    /// Closes every answer whose lease ran out before `now_ms` as `interrupted`; returns
    /// how many.
    async fn close_expired_answers(&self, now_ms: i64) -> Result<u64, StoreError>;
    /// Stores a battle's vote on `vote.turn`, with the battle locked: a second vote is
    /// `Conflict`; a turn that is no longer the last, or an answer to it that is not
    /// complete, is `Unfinished`. With the voter locked too, it measures the vote's signals
    /// and stores them with the vote, excluded (with its rule and reason) when
    /// `vote.exclusion` says so or a client rule of `vote.limits` is broken; returns both.
    async fn add_vote(&self, vote: &NewVote) -> Result<VoteOutcome, StoreError>;
    /// Stores a direct-chat rating.
    async fn add_rating(&self, rating: &NewRating) -> Result<(), StoreError>;
    /// Records a refused input.
    async fn add_flag(&self, flag: &NewFlag) -> Result<(), StoreError>;
    /// Per-model totals from the `model_win_rates` view, best first.
    async fn model_stats(&self) -> Result<Vec<ModelStats>, StoreError>;
    /// When the latest vote was cast (Unix ms, 0 without votes): a version number for caches
    /// that an index answers without counting rows.
    async fn last_vote_ms(&self) -> Result<i64, StoreError>;
    /// When a category was last added to a stored vote after it was cast (Unix ms, 0 if
    /// never): with [`ArenaStore::last_vote_ms`], the version of what the leaderboard counts.
    async fn last_tag_ms(&self) -> Result<i64, StoreError>;
    /// How many anonymous-battle votes each rule kept off the leaderboard, most first.
    async fn excluded_votes(&self) -> Result<Vec<ExcludedVotes>, StoreError>;
    /// Streams the counted anonymous votes (of `category` only, when given) in the order they
    /// were cast, each with what it judged when `with_style`; returns how many.
    async fn counted_battles(
        &self,
        with_style: bool,
        category: Option<&str>,
        sink: Sink<'_, BattleRow>,
    ) -> Result<u64, StoreError>;
    /// Writes counted anonymous votes with their battles, empty conversations and categories
    /// in one transaction, skipping every vote-time check: for filling a store to benchmark.
    async fn insert_counted_votes(&self, votes: &[CountedVote]) -> Result<(), StoreError>;
    /// Tags a stored vote with more categories (the ones it has already are kept).
    async fn add_vote_categories(
        &self,
        vote_id: &str,
        categories: &[String],
    ) -> Result<(), StoreError>;
    /// Counted anonymous votes per category, most first.
    async fn category_counts(&self) -> Result<Vec<(String, i64)>, StoreError>;
    /// Keeps `snapshot` (JSON) as the day's leaderboard snapshot unless the day has one
    /// already; returns whether it was kept.
    async fn add_snapshot(
        &self,
        record: &SnapshotRecord,
        snapshot: &str,
    ) -> Result<bool, StoreError>;
    /// The kept snapshots, newest first, at most `limit`.
    async fn snapshots(&self, limit: i64) -> Result<Vec<SnapshotRecord>, StoreError>;
    /// The snapshot (JSON) of `day`, if kept.
    async fn snapshot(&self, day: &str) -> Result<Option<String>, StoreError>;
    /// Streams votes (counted ones only unless `filter.all_votes`) with both conversations,
    /// oldest first.
    async fn export_battles(
        &self,
        filter: ExportFilter,
        sink: Sink<'_, ExportBattle>,
    ) -> Result<u64, StoreError>;
    /// Streams every conversation that has messages (and that `filter` keeps), oldest first.
    async fn export_conversations(
        &self,
        filter: ExportFilter,
        sink: Sink<'_, ExportConversation>,
    ) -> Result<u64, StoreError>;
}

/// Opens the store at `url` (`postgres://...` or `sqlite://PATH`), creating an SQLite file
/// and its directory when missing, and runs the migrations. An unreachable database is an
/// error naming it, so start-up stops with a clear message.
pub async fn connect(url: &str) -> Result<Arc<dyn ArenaStore>, StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PostgresStore::connect(url).await?))
    } else if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::connect(url).await?))
    } else {
        Err(StoreError::Config(format!(
            "database URL '{}' is neither postgres://... nor sqlite://...",
            redact(url)
        )))
    }
}

/// The URL without its password, for messages and logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}://{user}:***@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redact("postgres://arena:secret@db:5432/arena"),
            "postgres://arena:***@db:5432/arena"
        );
        assert_eq!(redact("sqlite:///tmp/a.db"), "sqlite:///tmp/a.db");
        assert_eq!(
            redact("redis://:pw@cache:6379/0"),
            "redis://:***@cache:6379/0"
        );
    }
}
