//! `arena eval`: LLM-as-a-judge benchmarks (gen, judge, show) and the judge against the
//! arena's human votes (agree).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use arena_eval::battles::{self, AgreeOptions};
use arena_eval::client::{ChatClient, RetryPolicy};
use arena_eval::generate::{self, GenOptions, Temperatures};
use arena_eval::judge::{self, JudgeOptions};
use arena_eval::likelihood::VerdictFrom;
use arena_eval::prompts::{JudgePrompts, Mode};
use arena_eval::questions::{QuestionSet, ARENA_80};
use arena_eval::render::Format;
use arena_eval::{agreement, chart, render, summary};
use clap::{Args, Subcommand};

/// The subcommands of `arena eval`.
#[derive(Subcommand, Debug)]
pub enum EvalCommand {
    /// Answer a question set with one or more models (resumable).
    Gen(GenArgs),
    /// Have a judge model grade or compare the stored answers (resumable).
    Judge(JudgeArgs),
    /// Print a judged run's scores, and draw its chart as SVG.
    Show(ShowArgs),
    /// Judge the arena's voted battles and report how often the judge agrees with the humans.
    Agree(AgreeArgs),
}

impl EvalCommand {
    /// Runs the subcommand.
    pub async fn run(self) -> anyhow::Result<()> {
        match self {
            Self::Gen(a) => a.run().await,
            Self::Judge(a) => a.run().await,
            Self::Show(a) => a.run().await,
            Self::Agree(a) => a.run().await,
        }
    }
}

/// Where the answers and judgments are stored, and which questions.
#[derive(Args, Debug)]
pub struct LedgerArgs {
    /// The arena's database (default: sqlite://$ARENA_HOME/arena.db).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// The question set: `arena-80` (shipped) or a JSONL file in MT-bench's
    /// `{question_id, category, turns, reference?}` or Arena-Hard's `{uid, category, prompt}`
    /// format; its file name without extension names it in the store.
    #[arg(long, default_value = ARENA_80)]
    pub questions: String,
}

impl LedgerArgs {
    async fn store(&self) -> anyhow::Result<std::sync::Arc<dyn arena_store::ArenaStore>> {
        Ok(
            arena_store::connect(&super::database_url_or_default(self.database_url.clone()))
                .await?,
        )
    }
}

/// How an OpenAI-compatible endpoint is called.
#[derive(Args, Debug)]
pub struct CallArgs {
    /// Calls in flight at the same time.
    #[arg(long, default_value_t = 4)]
    pub parallel: usize,
    /// Seconds one call may take.
    #[arg(long, default_value_t = 600)]
    pub timeout_s: u64,
    /// Calls in all per request, the first included, on 429, 5xx and network errors (waits
    /// 1, 2, 4… s, or what Retry-After says).
    #[arg(long, default_value_t = 6)]
    pub attempts: u32,
}

impl CallArgs {
    fn client(&self, url: &str, key: Option<String>) -> anyhow::Result<ChatClient> {
        let retry = RetryPolicy {
            attempts: self.attempts.max(1),
            ..RetryPolicy::default()
        };
        Ok(ChatClient::new(
            url,
            key,
            Duration::from_secs(self.timeout_s),
            retry,
        )?)
    }
}

/// The judge's endpoint and prompts.
#[derive(Args, Debug)]
pub struct JudgeEndpointArgs {
    /// The judge model's name at its endpoint (e.g. gpt-4o, or a model the controller serves).
    #[arg(long)]
    pub judge_model: String,
    /// The judge's OpenAI-compatible base URL.
    #[arg(
        long,
        env = "ARENA_JUDGE_URL",
        default_value = "http://127.0.0.1:8080/v1"
    )]
    pub judge_url: String,
    /// The judge's API key (default: $OPENAI_API_KEY).
    #[arg(long, env = "ARENA_JUDGE_API_KEY", hide_env_values = true)]
    pub judge_api_key: Option<String>,
    /// A folder whose single.jinja, pairwise.jinja or arena-hard.jinja replace the shipped
    /// judge prompts.
    #[arg(long)]
    pub prompts: Option<PathBuf>,
    /// The longest judge output, in tokens.
    #[arg(long, default_value_t = 2048)]
    pub judge_max_tokens: u32,
    /// Read pairwise verdicts from the judge's text (`text`), or begin its reply with `[[` and
    /// take the likeliest of A, B and C from its token log-probabilities (`likelihood`: for
    /// small local judges that never write a verdict; stored as judge "NAME (likelihood)").
    #[arg(long, default_value = "text")]
    pub verdict_from: VerdictFrom,
}

impl JudgeEndpointArgs {
    fn prompts(&self) -> anyhow::Result<JudgePrompts> {
        Ok(match &self.prompts {
            Some(dir) => JudgePrompts::from_dir(dir)?,
            None => JudgePrompts::builtin()?,
        })
    }

    fn key(&self) -> Option<String> {
        self.judge_api_key
            .clone()
            .or_else(|| std::env::var("OPENAI_API_KEY").ok())
    }
}

/// A progress label for a terminal, or none under `--quiet`.
fn label(quiet: bool, text: &str) -> Option<String> {
    (!quiet).then(|| text.to_string())
}

/// Flags of `arena eval gen`.
#[derive(Args, Debug)]
pub struct GenArgs {
    #[command(flatten)]
    pub ledger: LedgerArgs,
    #[command(flatten)]
    pub calls: CallArgs,
    /// A model to answer, as the endpoint names it; repeat for several.
    #[arg(long = "model", required = true)]
    pub models: Vec<String>,
    /// The OpenAI-compatible base URL serving the models (our controller by default).
    #[arg(
        long,
        env = "ARENA_EVAL_URL",
        default_value = "http://127.0.0.1:8080/v1"
    )]
    pub base_url: String,
    /// The endpoint's API key.
    #[arg(long, env = "OPENAI_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Temperature: `T` for every category, or `CATEGORY=T`; repeatable (default: 0 for
    /// math, coding, reasoning and extraction, 0.7 otherwise).
    #[arg(long)]
    pub temperature: Vec<String>,
    /// The longest answer per turn, in tokens.
    #[arg(long, default_value_t = 1024)]
    pub max_tokens: u32,
    /// Also write every complete answer of these models as MT-bench answer JSONL here.
    #[arg(long)]
    pub answers_file: Option<PathBuf>,
    /// No progress output.
    #[arg(long)]
    pub quiet: bool,
}

impl GenArgs {
    async fn run(self) -> anyhow::Result<()> {
        let set = QuestionSet::open(&self.ledger.questions)?;
        let mut temperatures = Temperatures::default();
        for spec in &self.temperature {
            temperatures.set(spec)?;
        }
        let store = self.ledger.store().await?;
        let client = self.calls.client(&self.base_url, self.api_key.clone())?;
        let opts = GenOptions {
            models: self.models.clone(),
            temperatures,
            max_tokens: Some(self.max_tokens),
            parallel: self.calls.parallel,
        };
        let progress = label(self.quiet, &format!("answering {}", set.name));
        let report = generate::generate(store.as_ref(), &client, &set, &opts, progress.as_deref())
            .await
            .context("rerun the same command to resume: stored answers are kept")?;
        eprintln!(
            "arena eval gen: {} turns answered, {} already stored ({} questions of '{}', {} models)",
            report.answered,
            report.skipped,
            set.questions.len(),
            set.name,
            opts.models.len()
        );
        if let Some(path) = &self.answers_file {
            let answers = store.eval_answers(&set.name, None).await?;
            std::fs::write(path, generate::mt_bench_jsonl(&set, &answers, &opts.models))
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        Ok(())
    }
}

/// Flags of `arena eval judge`.
#[derive(Args, Debug)]
pub struct JudgeArgs {
    #[command(flatten)]
    pub ledger: LedgerArgs,
    #[command(flatten)]
    pub endpoint: JudgeEndpointArgs,
    #[command(flatten)]
    pub calls: CallArgs,
    /// single (grades 1–10), pairwise ([[A]]/[[B]]/[[C]], both orders) or arena-hard (five
    /// levels, strong verdicts ×3, both orders).
    #[arg(long, default_value = "single")]
    pub mode: Mode,
    /// A model to judge; repeat for several (default: every model with answers).
    #[arg(long = "model")]
    pub models: Vec<String>,
    /// Pairwise modes: compare every model with this one (default: all pairs).
    #[arg(long)]
    pub baseline: Option<String>,
    /// No progress output.
    #[arg(long)]
    pub quiet: bool,
}

impl JudgeArgs {
    async fn run(self) -> anyhow::Result<()> {
        let set = QuestionSet::open(&self.ledger.questions)?;
        let prompts = self.endpoint.prompts()?;
        let store = self.ledger.store().await?;
        let client = self
            .calls
            .client(&self.endpoint.judge_url, self.endpoint.key())?;
        let opts = JudgeOptions {
            judge: self.endpoint.judge_model.clone(),
            mode: self.mode,
            models: self.models.clone(),
            baseline: self.baseline.clone(),
            parallel: self.calls.parallel,
            max_tokens: Some(self.endpoint.judge_max_tokens),
            verdict_from: self.endpoint.verdict_from,
        };
        let progress = label(
            self.quiet,
            &format!("judging {} ({})", set.name, self.mode.name()),
        );
        let report = judge::judge(
            store.as_ref(),
            &client,
            &prompts,
            &set,
            &opts,
            progress.as_deref(),
        )
        .await
        .context("rerun the same command to resume: stored judgments are kept")?;
        eprintln!(
            "arena eval judge: {} judgments made ({} without a readable verdict), {} already stored",
            report.judged, report.unreadable, report.skipped
        );
        Ok(())
    }
}

/// Flags of `arena eval show`.
#[derive(Args, Debug)]
pub struct ShowArgs {
    #[command(flatten)]
    pub ledger: LedgerArgs,
    /// The judge (default: the question set's newest judged run).
    #[arg(long)]
    pub judge_model: Option<String>,
    /// The mode (default: the newest judged run's).
    #[arg(long)]
    pub mode: Option<Mode>,
    /// Single mode: totals relative to this model (default: the best); pairwise modes: the
    /// opponent (default: the model in every pair, else all pairs pooled).
    #[arg(long)]
    pub baseline: Option<String>,
    /// table, json or csv.
    #[arg(long, default_value = "table")]
    pub format: Format,
    /// Also draw the chart (each model's score as a percentage of the baseline's) to this SVG.
    #[arg(long)]
    pub chart: Option<PathBuf>,
    /// Seed of the bootstrap intervals.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

impl ShowArgs {
    async fn run(self) -> anyhow::Result<()> {
        let store = self.ledger.store().await?;
        let mut s = summary::load(
            store.as_ref(),
            &QuestionSet::name_of(&self.ledger.questions),
            self.judge_model.as_deref(),
            self.mode.map(Mode::name),
            self.baseline.as_deref(),
            self.seed,
        )
        .await?;
        summary::compare_with_arena(store.as_ref(), &mut s).await?;
        print!("{}", render::summary(&s, self.format));
        if let Some(path) = &self.chart {
            let svg = chart::relative_chart(&s)
                .context("nothing to draw: no model has a readable score yet")?;
            std::fs::write(path, svg)
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!("arena eval show: chart written to {}", path.display());
        }
        Ok(())
    }
}

/// Flags of `arena eval agree`.
#[derive(Args, Debug)]
pub struct AgreeArgs {
    /// The arena's database (default: sqlite://$ARENA_HOME/arena.db).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// A question set whose questions name the category of battles that asked them
    /// (`arena-80` or a JSONL file); other battles are `uncategorized`.
    #[arg(long, default_value = ARENA_80)]
    pub questions: String,
    #[command(flatten)]
    pub endpoint: JudgeEndpointArgs,
    #[command(flatten)]
    pub calls: CallArgs,
    /// Show the judge the whole conversation up to the voted turn (default: the first turn).
    #[arg(long)]
    pub full_conversation: bool,
    /// Only the newest N voted battles.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Also votes that do not count for the leaderboard.
    #[arg(long)]
    pub all_votes: bool,
    /// table, json or csv.
    #[arg(long, default_value = "table")]
    pub format: Format,
    /// No progress output.
    #[arg(long)]
    pub quiet: bool,
}

impl AgreeArgs {
    async fn run(self) -> anyhow::Result<()> {
        let categories = QuestionSet::open(&self.questions)?;
        let prompts = self.endpoint.prompts()?;
        let store =
            arena_store::connect(&super::database_url_or_default(self.database_url.clone()))
                .await?;
        let client = self
            .calls
            .client(&self.endpoint.judge_url, self.endpoint.key())?;
        let opts = AgreeOptions {
            judge: self.endpoint.judge_model.clone(),
            full_conversation: self.full_conversation,
            parallel: self.calls.parallel,
            max_tokens: Some(self.endpoint.judge_max_tokens),
            verdict_from: self.endpoint.verdict_from,
            limit: self.limit,
            all_votes: self.all_votes,
        };
        let progress = label(self.quiet, "judging arena battles");
        let report = battles::agree(
            store.as_ref(),
            &client,
            &prompts,
            Some(&categories),
            &opts,
            progress.as_deref(),
        )
        .await
        .context("rerun the same command to resume: stored judgments are kept")?;
        eprintln!(
            "arena eval agree: {} judgments made, {} already stored, {} battles left out (one model on both sides, or an answer missing)",
            report.judged, report.skipped, report.left_out
        );
        print!(
            "{}",
            agreement::render(&report.agreement, report.ranks.as_ref(), self.format)
        );
        Ok(())
    }
}
