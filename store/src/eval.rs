//! The ledger of `arena eval`: answers to question sets and the judge's judgments, on both
//! backends. Writes never overwrite: a row that exists is kept, so a resumed or concurrent
//! run skips what is done and loses nothing.

use arena_ratings::clock::unix_ms;

use crate::sql::query_error;
use crate::{PostgresStore, SqliteStore, StoreError};

/// One model's answer to one turn of a question.
#[derive(Debug, Clone, Default, PartialEq, sqlx::FromRow, serde::Serialize)]
pub struct EvalAnswer {
    /// The question set's name (`arena-80`, `mt_bench`, ...).
    pub question_set: String,
    /// The question's id within its set.
    pub question_id: String,
    /// The answering model.
    pub model: String,
    /// The turn, from 1.
    pub turn: i64,
    /// The question's category.
    pub category: String,
    /// The answer's text.
    pub content: String,
    /// The sampling temperature it was generated with.
    pub temperature: f64,
    /// Prompt tokens as the endpoint counted them.
    pub prompt_tokens: Option<i64>,
    /// Generated tokens.
    pub completion_tokens: Option<i64>,
    /// Milliseconds the call took.
    pub latency_ms: Option<i64>,
    /// `stop`, `length`, ... as the endpoint said.
    pub finish_reason: Option<String>,
}

/// One call to the judge and what came of it.
#[derive(Debug, Clone, Default, PartialEq, sqlx::FromRow, serde::Serialize)]
pub struct EvalJudgment {
    /// The question set (`arena-battles` for arena battles judged by `arena eval agree`).
    pub question_set: String,
    /// The question's id (the battle's id for arena battles).
    pub question_id: String,
    /// `single`, `pairwise` or `arena-hard`.
    pub mode: String,
    /// The judge model's name.
    pub judge: String,
    /// The judged turn, from 1 (earlier turns are shown as context).
    pub turn: i64,
    /// The graded model, or the model whose answer was shown first.
    pub model_a: String,
    /// The model shown second; empty in single mode.
    pub model_b: String,
    /// The question's category.
    pub category: String,
    /// The prompt sent to the judge.
    pub prompt: String,
    /// The judge's raw output.
    pub output: String,
    /// The verdict as read (`7`, `A`, `B`, `C`, `A>>B`, ...); None when unreadable.
    pub verdict: Option<String>,
    /// Single mode: the grade.
    pub score: Option<f64>,
    /// Why no verdict could be read.
    pub error: Option<String>,
}

/// Which judgments to read.
#[derive(Debug, Clone, Default)]
pub struct JudgmentFilter {
    /// Only this question set.
    pub question_set: Option<String>,
    /// Only this judge.
    pub judge: Option<String>,
    /// Only this mode.
    pub mode: Option<String>,
    /// Also read the prompts and outputs (large); without, they come back empty.
    pub with_text: bool,
}

/// One (question set, judge, mode) with judgments, for listings.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow, serde::Serialize)]
pub struct EvalRun {
    /// The question set.
    pub question_set: String,
    /// The judge.
    pub judge: String,
    /// The mode.
    pub mode: String,
    /// How many judgments.
    pub judgments: i64,
    /// How many of them have no readable verdict.
    pub unreadable: i64,
    /// When the latest was made, Unix ms.
    pub last_ms: i64,
}

/// Where `arena eval` keeps its answers and judgments.
#[async_trait::async_trait]
pub trait EvalLedger: Send + Sync {
    /// Stores an answer; false (and nothing written) when that turn was already answered.
    async fn add_eval_answer(&self, answer: &EvalAnswer) -> Result<bool, StoreError>;
    /// The answers to `question_set`, of one model or all, by question, model and turn.
    async fn eval_answers(
        &self,
        question_set: &str,
        model: Option<&str>,
    ) -> Result<Vec<EvalAnswer>, StoreError>;
    /// Stores a judgment; false (and nothing written) when that judgment was already made.
    async fn add_eval_judgment(&self, judgment: &EvalJudgment) -> Result<bool, StoreError>;
    /// The judgments `filter` keeps, ordered by question set, question, mode, judge, turn
    /// and models.
    async fn eval_judgments(
        &self,
        filter: &JudgmentFilter,
    ) -> Result<Vec<EvalJudgment>, StoreError>;
    /// Every (question set, judge, mode) that has judgments, newest first.
    async fn eval_runs(&self) -> Result<Vec<EvalRun>, StoreError>;
}

const ANSWER_COLUMNS: &str = "question_set, question_id, model, turn, category, content, \
     temperature, prompt_tokens, completion_tokens, latency_ms, finish_reason";

macro_rules! eval_ledger_sql {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl EvalLedger for $store {
            async fn add_eval_answer(&self, a: &EvalAnswer) -> Result<bool, StoreError> {
                let sql = format!(
                    "INSERT INTO eval_answers ({ANSWER_COLUMNS}, created_ms) VALUES \
                     ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT DO NOTHING"
                );
                sqlx::query(&sql)
                    .bind(&a.question_set)
                    .bind(&a.question_id)
                    .bind(&a.model)
                    .bind(a.turn)
                    .bind(&a.category)
                    .bind(&a.content)
                    .bind(a.temperature)
                    .bind(a.prompt_tokens)
                    .bind(a.completion_tokens)
                    .bind(a.latency_ms)
                    .bind(&a.finish_reason)
                    .bind(unix_ms() as i64)
                    .execute(&self.pool)
                    .await
                    .map(|r| r.rows_affected() == 1)
                    .map_err(query_error)
            }

            async fn eval_answers(
                &self,
                question_set: &str,
                model: Option<&str>,
            ) -> Result<Vec<EvalAnswer>, StoreError> {
                let sql = format!(
                    "SELECT {ANSWER_COLUMNS} FROM eval_answers WHERE question_set = $1 \
                     AND ($2 IS NULL OR model = $2) ORDER BY question_id, model, turn"
                );
                sqlx::query_as(&sql)
                    .bind(question_set)
                    .bind(model)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(query_error)
            }

            async fn add_eval_judgment(&self, j: &EvalJudgment) -> Result<bool, StoreError> {
                sqlx::query(
                    "INSERT INTO eval_judgments (question_set, question_id, mode, judge, turn, \
                     model_a, model_b, category, prompt, output, verdict, score, error, created_ms) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(&j.question_set)
                .bind(&j.question_id)
                .bind(&j.mode)
                .bind(&j.judge)
                .bind(j.turn)
                .bind(&j.model_a)
                .bind(&j.model_b)
                .bind(&j.category)
                .bind(&j.prompt)
                .bind(&j.output)
                .bind(&j.verdict)
                .bind(j.score)
                .bind(&j.error)
                .bind(unix_ms() as i64)
                .execute(&self.pool)
                .await
                .map(|r| r.rows_affected() == 1)
                .map_err(query_error)
            }

            async fn eval_judgments(
                &self,
                f: &JudgmentFilter,
            ) -> Result<Vec<EvalJudgment>, StoreError> {
                let text = if f.with_text {
                    "prompt, output"
                } else {
                    "'' AS prompt, '' AS output"
                };
                let sql = format!(
                    "SELECT question_set, question_id, mode, judge, turn, model_a, model_b, \
                     category, {text}, verdict, score, error FROM eval_judgments \
                     WHERE ($1 IS NULL OR question_set = $1) AND ($2 IS NULL OR judge = $2) \
                     AND ($3 IS NULL OR mode = $3) \
                     ORDER BY question_set, question_id, mode, judge, turn, model_a, model_b"
                );
                sqlx::query_as(&sql)
                    .bind(&f.question_set)
                    .bind(&f.judge)
                    .bind(&f.mode)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(query_error)
            }

            async fn eval_runs(&self) -> Result<Vec<EvalRun>, StoreError> {
                sqlx::query_as(
                    "SELECT question_set, judge, mode, CAST(COUNT(*) AS BIGINT) AS judgments, \
                     CAST(SUM(CASE WHEN verdict IS NULL THEN 1 ELSE 0 END) AS BIGINT) AS unreadable, \
                     CAST(MAX(created_ms) AS BIGINT) AS last_ms FROM eval_judgments \
                     GROUP BY question_set, judge, mode ORDER BY last_ms DESC, question_set, judge, mode",
                )
                .fetch_all(&self.pool)
                .await
                .map_err(query_error)
            }
        }
    };
}

eval_ledger_sql!(PostgresStore);
eval_ledger_sql!(SqliteStore);
