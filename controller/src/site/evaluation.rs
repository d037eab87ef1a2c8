//! The page's Evaluation section: what `arena eval` judged, as summaries
//! (`GET /api/evaluation`) and the Vicuna article's relative-score chart
//! (`GET /api/evaluation/chart.svg`). A summary reads every judgment of its run, and the
//! routes are public, so each run's summary and chart are kept until its judgments change;
//! the list of runs itself is read at most once per second.

use std::collections::hash_map::Entry as Slot;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arena_eval::summary::{self, Summary};
use arena_store::{ArenaStore, EvalRun, JudgmentFilter};
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS,
};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::store_error;
use crate::error::ApiError;

/// The question set of `arena eval agree`: judge-vs-human agreement, not a benchmark.
const AGREEMENT_SET: &str = "arena-battles";

/// How long one read of the runs is trusted before the store is asked again.
const RUNS_TTL: Duration = Duration::from_secs(1);

/// The chart is drawn from stored text: it may load nothing and run nothing, even when opened
/// on its own rather than through an `<img>`.
const SVG_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'";

/// Which evaluation: one (question set, judge, mode).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct RunKey {
    question_set: String,
    judge: String,
    mode: String,
}

/// A run as last read. Judgments are only ever added, so a new one changes the count or the
/// time: together they are the version of the run's summary.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Run {
    key: RunKey,
    judgments: i64,
    last_ms: i64,
}

/// The runs the page shows, newest first as the store lists them.
fn shown_runs(runs: Vec<EvalRun>) -> Vec<Run> {
    runs.into_iter()
        .filter(|r| r.question_set != AGREEMENT_SET)
        .map(|r| Run {
            key: RunKey {
                question_set: r.question_set,
                judge: r.judge,
                mode: r.mode,
            },
            judgments: r.judgments,
            last_ms: r.last_ms,
        })
        .collect()
}

/// The stored run a request names, by exact comparison: what a client sends only ever picks
/// among runs that exist, and never reaches the store.
fn find_run<'a>(runs: &'a [Run], set: &str, judge: &str, mode: &str) -> Option<&'a Run> {
    runs.iter()
        .find(|r| r.key.question_set == set && r.key.judge == judge && r.key.mode == mode)
}

/// One run's summary and, once asked for, its chart (None inside: nothing to draw).
struct Entry {
    run: Run,
    summary: Arc<Summary>,
    chart: Option<Option<Bytes>>,
}

#[derive(Default)]
struct Cached {
    /// The last read of the runs and when it was made.
    runs: Option<(Instant, Vec<Run>)>,
    /// Per run; only runs in the last read are kept, so the map never outgrows the store.
    entries: HashMap<RunKey, Entry>,
    /// The `/api/evaluation` body and the runs it was built from.
    json: Option<(Vec<Run>, Bytes)>,
}

/// The evaluation results one controller serves, cached per run.
pub struct Evaluations {
    store: Arc<dyn ArenaStore>,
    runs_ttl: Duration,
    // One computation at a time; waiters then find it done.
    cached: tokio::sync::Mutex<Cached>,
}

impl Evaluations {
    /// Results from `store`, whose list of runs is read again once `runs_ttl` has passed.
    pub fn new(store: Arc<dyn ArenaStore>, runs_ttl: Duration) -> Self {
        Self {
            store,
            runs_ttl,
            cached: tokio::sync::Mutex::new(Cached::default()),
        }
    }

    /// The runs: the last read while it is younger than `runs_ttl`, else a new one.
    async fn runs(&self, c: &mut Cached) -> Result<Vec<Run>, ApiError> {
        if let Some((at, runs)) = &c.runs {
            if at.elapsed() < self.runs_ttl {
                return Ok(runs.clone());
            }
        }
        let runs = shown_runs(self.store.eval_runs().await.map_err(store_error)?);
        c.entries.retain(|_, e| runs.contains(&e.run));
        c.runs = Some((Instant::now(), runs.clone()));
        Ok(runs)
    }

    /// The cached entry of `run`, summarised again when its judgments changed.
    async fn entry<'c>(&self, c: &'c mut Cached, run: &Run) -> Result<&'c mut Entry, ApiError> {
        Ok(match c.entries.entry(run.key.clone()) {
            Slot::Occupied(o) if o.get().run == *run => o.into_mut(),
            slot => {
                let summary = self.summarise(&run.key).await?;
                let entry = Entry {
                    run: run.clone(),
                    summary,
                    chart: None,
                };
                slot.insert_entry(entry).into_mut()
            }
        })
    }

    async fn summarise(&self, key: &RunKey) -> Result<Arc<Summary>, ApiError> {
        let judgments = self
            .store
            .eval_judgments(&JudgmentFilter {
                question_set: Some(key.question_set.clone()),
                judge: Some(key.judge.clone()),
                mode: Some(key.mode.clone()),
                with_text: false,
            })
            .await
            .map_err(store_error)?;
        // The bootstrap over questions keeps a core busy for a moment on large sets.
        tokio::task::spawn_blocking(move || Arc::new(summary::build(&judgments, None, 0)))
            .await
            .map_err(|e| ApiError::internal(format!("the evaluation summary failed: {e}")))
    }

    /// The `/api/evaluation` body: `{"evaluations": [Summary, ...]}`, newest run first.
    pub async fn json(&self) -> Result<Bytes, ApiError> {
        let mut c = self.cached.lock().await;
        let runs = self.runs(&mut c).await?;
        if let Some((built_from, body)) = &c.json {
            if *built_from == runs {
                return Ok(body.clone());
            }
        }
        let mut summaries = Vec::with_capacity(runs.len());
        for run in &runs {
            summaries.push(Arc::clone(&self.entry(&mut c, run).await?.summary));
        }
        #[derive(serde::Serialize)]
        struct Body<'a> {
            evaluations: Vec<&'a Summary>,
        }
        let body = serde_json::to_vec(&Body {
            evaluations: summaries.iter().map(|s| &**s).collect(),
        })
        .map(Bytes::from)
        .map_err(|e| ApiError::internal(format!("the evaluations as JSON: {e}")))?;
        c.json = Some((runs, body.clone()));
        Ok(body)
    }

    /// The chart of one run as an SVG document; None when there is no such run or nothing
    /// to draw.
    pub async fn chart(
        &self,
        set: &str,
        judge: &str,
        mode: &str,
    ) -> Result<Option<Bytes>, ApiError> {
        let mut c = self.cached.lock().await;
        let runs = self.runs(&mut c).await?;
        let Some(run) = find_run(&runs, set, judge, mode) else {
            return Ok(None);
        };
        let entry = self.entry(&mut c, run).await?;
        let chart = entry.chart.get_or_insert_with(|| {
            arena_eval::chart::relative_chart(&entry.summary).map(Bytes::from)
        });
        Ok(chart.clone())
    }
}

/// `GET /api/evaluation` and `GET /api/evaluation/chart.svg` over `store`, with a cache of
/// their own.
pub fn router<S: Clone + Send + Sync + 'static>(store: Arc<dyn ArenaStore>) -> Router<S> {
    Router::new()
        .route("/api/evaluation", get(summaries))
        .route("/api/evaluation/chart.svg", get(chart))
        .with_state(Arc::new(Evaluations::new(store, RUNS_TTL)))
}

async fn summaries(State(ev): State<Arc<Evaluations>>) -> Result<Response, ApiError> {
    let body = ev.json().await?;
    Ok((
        [
            (CONTENT_TYPE, "application/json"),
            (CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response())
}

/// `?set=..&judge=..&mode=..`: the run to draw.
#[derive(serde::Deserialize)]
struct ChartQuery {
    set: Option<String>,
    judge: Option<String>,
    mode: Option<String>,
}

async fn chart(
    State(ev): State<Arc<Evaluations>>,
    query: Result<Query<ChartQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let need = |v: Option<String>, name: &str| {
        v.ok_or_else(|| {
            ApiError::invalid_param(
                name,
                format!("'{name}' is missing: the chart needs set, judge and mode"),
            )
        })
    };
    let (set, judge, mode) = (
        need(q.set, "set")?,
        need(q.judge, "judge")?,
        need(q.mode, "mode")?,
    );
    let svg = ev.chart(&set, &judge, &mode).await?.ok_or_else(|| {
        ApiError::not_found(
            "no chart for this evaluation: no such question set, judge and mode (GET /api/evaluation lists them), or no model to draw",
        )
    })?;
    Ok((
        [
            (CONTENT_TYPE, "image/svg+xml"),
            (CACHE_CONTROL, "no-cache"),
            (X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (CONTENT_SECURITY_POLICY, SVG_CSP),
        ],
        svg,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arena_store::EvalJudgment;

    fn stored(set: &str, judge: &str, mode: &str, judgments: i64, last_ms: i64) -> EvalRun {
        EvalRun {
            question_set: set.into(),
            judge: judge.into(),
            mode: mode.into(),
            judgments,
            unreadable: 0,
            last_ms,
        }
    }

    #[test]
    fn agreement_runs_are_left_out_and_the_order_kept() {
        let runs = shown_runs(vec![
            stored("arena-80", "gpt-4", "single", 10, 30),
            stored(AGREEMENT_SET, "gpt-4", "pairwise", 99, 20),
            stored("arena-80", "gpt-4", "pairwise", 4, 10),
        ]);
        let keys: Vec<(&str, &str)> = runs
            .iter()
            .map(|r| (r.key.question_set.as_str(), r.key.mode.as_str()))
            .collect();
        assert_eq!(keys, [("arena-80", "single"), ("arena-80", "pairwise")]);
        assert_eq!((runs[0].judgments, runs[0].last_ms), (10, 30));
    }

    #[test]
    fn a_run_is_found_only_by_its_exact_names() {
        let runs = shown_runs(vec![
            stored("arena-80", "gpt-4", "single", 1, 1),
            stored(AGREEMENT_SET, "gpt-4", "single", 1, 1),
        ]);
        assert!(find_run(&runs, "arena-80", "gpt-4", "single").is_some());
        for (set, judge, mode) in [
            ("arena-80", "gpt-4", "pairwise"),
            ("Arena-80", "gpt-4", "single"),
            ("arena-80 ", "gpt-4", "single"),
            ("arena-80", "gpt", "single"),
            ("arena-80' OR '1'='1", "gpt-4", "single"),
            // Agreement runs are not evaluations, even when they exist.
            (AGREEMENT_SET, "gpt-4", "single"),
        ] {
            assert!(
                find_run(&runs, set, judge, mode).is_none(),
                "{set} {judge} {mode}"
            );
        }
    }

    fn grade(question: &str, model: &str, score: Option<f64>) -> EvalJudgment {
        EvalJudgment {
            question_set: "arena-80".into(),
            question_id: question.into(),
            mode: "single".into(),
            judge: "judge".into(),
            turn: 1,
            model_a: model.into(),
            category: "writing".into(),
            verdict: score.map(|s| s.to_string()),
            score,
            error: score.is_none().then(|| "no verdict".into()),
            ..Default::default()
        }
    }

    async fn store(dir: &tempfile::TempDir) -> Arc<dyn ArenaStore> {
        let url = format!("sqlite://{}", dir.path().join("eval.db").display());
        arena_store::connect(&url).await.unwrap()
    }

    fn shown(body: &Bytes) -> serde_json::Value {
        serde_json::from_slice(body).unwrap()
    }

    /// The cached summary of the run of `judge`.
    async fn summary_of(ev: &Evaluations, judge: &str) -> Arc<Summary> {
        let c = ev.cached.lock().await;
        let e = c.entries.values().find(|e| e.run.key.judge == judge);
        Arc::clone(&e.unwrap().summary)
    }

    #[tokio::test]
    async fn summaries_are_rebuilt_only_for_the_runs_whose_judgments_changed() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        store
            .add_eval_judgment(&grade("q1", "a", Some(8.0)))
            .await
            .unwrap();
        store
            .add_eval_judgment(&grade("q1", "b", Some(4.0)))
            .await
            .unwrap();
        let mut other = grade("q1", "a", Some(5.0));
        other.judge = "other-judge".into();
        store.add_eval_judgment(&other).await.unwrap();
        let ev = Evaluations::new(Arc::clone(&store), Duration::ZERO);

        let first = ev.json().await.unwrap();
        assert_eq!(shown(&first)["evaluations"].as_array().unwrap().len(), 2);
        let (judge_before, other_before) = (
            summary_of(&ev, "judge").await,
            summary_of(&ev, "other-judge").await,
        );
        // Nothing changed: the same body, not rebuilt.
        assert_eq!(ev.json().await.unwrap(), first);

        store
            .add_eval_judgment(&grade("q2", "b", None))
            .await
            .unwrap();
        let second = shown(&ev.json().await.unwrap());
        let run = second["evaluations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["judge"] == "judge")
            .unwrap();
        assert_eq!(
            (run["judgments"].clone(), run["unreadable"].clone()),
            (3.into(), 1.into())
        );
        assert!(!Arc::ptr_eq(&judge_before, &summary_of(&ev, "judge").await));
        assert!(Arc::ptr_eq(
            &other_before,
            &summary_of(&ev, "other-judge").await
        ));
    }

    #[tokio::test]
    async fn the_runs_are_read_at_most_once_per_interval() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        let ev = Evaluations::new(Arc::clone(&store), Duration::from_secs(3600));
        assert_eq!(
            shown(&ev.json().await.unwrap()),
            serde_json::json!({"evaluations": []})
        );
        store
            .add_eval_judgment(&grade("q1", "a", Some(8.0)))
            .await
            .unwrap();
        // Within the interval the last read stands, for the list and for a chart alike.
        assert_eq!(
            shown(&ev.json().await.unwrap()),
            serde_json::json!({"evaluations": []})
        );
        assert_eq!(ev.chart("arena-80", "judge", "single").await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_chart_is_drawn_for_a_stored_run_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        store
            .add_eval_judgment(&grade("q1", "a", Some(8.0)))
            .await
            .unwrap();
        store
            .add_eval_judgment(&grade("q1", "<b>", Some(4.0)))
            .await
            .unwrap();
        let ev = Evaluations::new(store, Duration::ZERO);
        let svg = ev
            .chart("arena-80", "judge", "single")
            .await
            .unwrap()
            .unwrap();
        let svg = String::from_utf8(svg.to_vec()).unwrap();
        assert!(svg.contains("<svg"), "{svg}");
        assert!(!svg.contains("<b>"), "{svg}");
        assert_eq!(
            ev.chart("arena-80", "judge", "pairwise").await.unwrap(),
            None
        );
        assert_eq!(
            ev.chart("arena-80", "nobody", "single").await.unwrap(),
            None
        );
    }
}
