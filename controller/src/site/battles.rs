//! Battles: two models answer every turn side by side; one vote closes the battle. In
//! anonymous battles the names reach the client only in the vote's answer.

use std::sync::Arc;

use arena_store::{BattleRecord, NewBattle, NewVote, StoreError};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::hygiene::{exclusion_reason, names_shown};
use super::input::{Sampling, TurnBody};
use super::pairing;
use super::terms::AcceptedTerms;
use super::turns::{self, Streaming, Thread};
use super::{body, optional_body, store_error, ArenaState, Client};
use crate::error::ApiError;
use crate::ids::random_id;

/// The body of `POST /api/battles`.
#[derive(Debug, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
pub enum NewBattleBody {
    /// Two models drawn at random, names hidden until the vote.
    Anonymous,
    /// Two chosen models, names shown.
    Named {
        /// Model on side A.
        model_a: String,
        /// Model on side B.
        model_b: String,
    },
}

/// The four outcomes of a vote.
const WINNERS: [&str; 4] = ["model_a", "model_b", "tie", "tie (bothbad)"];

/// `POST /api/battles`; the terms of use the client accepted are stored with both sides.
pub async fn create(
    State(state): State<Arc<ArenaState>>,
    client: Client,
    AcceptedTerms(terms_version): AcceptedTerms,
    b: Result<Json<NewBattleBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let models = state.gateway.served_models(true);
    let (model_a, model_b, pair_probability) = match body(b)? {
        NewBattleBody::Anonymous => {
            let d = pairing::draw(&state, &models).await?;
            (d.model_a, d.model_b, Some(d.pair_probability))
        }
        NewBattleBody::Named { model_a, model_b } => {
            for (param, m) in [("model_a", &model_a), ("model_b", &model_b)] {
                if !models.contains(m) {
                    return Err(ApiError {
                        param: Some(param.into()),
                        ..ApiError::model_not_found(m)
                    });
                }
            }
            (model_a, model_b, None)
        }
    };
    let anonymous = pair_probability.is_some();
    let battle = NewBattle {
        id: random_id("b_"),
        model_a,
        model_b,
        anonymous,
        conversation_a: random_id("c_"),
        conversation_b: random_id("c_"),
        client_hash: client.hash,
        terms_version,
        pair_probability,
    };
    state
        .store
        .create_battle(&battle)
        .await
        .map_err(store_error)?;
    let mut answer =
        json!({"id": battle.id, "mode": if anonymous { "anonymous" } else { "named" }});
    if !anonymous {
        answer["model_a"] = json!(battle.model_a);
        answer["model_b"] = json!(battle.model_b);
    }
    Ok(Json(answer))
}

async fn load(state: &ArenaState, id: &str) -> Result<BattleRecord, ApiError> {
    state
        .store
        .battle(id)
        .await
        .map_err(store_error)?
        .ok_or_else(|| ApiError::not_found(format!("no battle with id '{id}'")))
}

async fn threads(state: &ArenaState, b: &BattleRecord) -> Result<[Thread; 2], ApiError> {
    Ok([
        Thread::load(state, &b.conversation_a, &b.model_a).await?,
        Thread::load(state, &b.conversation_b, &b.model_b).await?,
    ])
}

fn open(b: &BattleRecord) -> Result<(), ApiError> {
    if b.votes > 0 {
        return Err(turns::battle_closed());
    }
    Ok(())
}

fn streaming(b: &BattleRecord) -> Streaming {
    Streaming {
        hide: if b.anonymous {
            vec![b.model_a.clone(), b.model_b.clone()]
        } else {
            Vec::new()
        },
        in_battle: true,
    }
}

/// `GET /api/battles/{id}`: the state, and the names (with their catalog info) once they may
/// be shown.
pub async fn show(
    State(state): State<Arc<ArenaState>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let b = load(&state, &id).await?;
    let [a, _] = threads(&state, &b).await?;
    let mut answer = json!({
        "id": b.id,
        "mode": if b.anonymous { "anonymous" } else { "named" },
        "turns": a.turns(),
        "voted": b.votes > 0,
    });
    if !b.anonymous || b.votes > 0 {
        answer["model_a"] = json!(b.model_a);
        answer["model_b"] = json!(b.model_b);
        answer["info_a"] = state.catalog.info_json(&b.model_a);
        answer["info_b"] = state.catalog.info_json(&b.model_b);
    }
    Ok(Json(answer))
}

/// `POST /api/battles/{id}/turns`.
pub async fn turn(
    State(state): State<Arc<ArenaState>>,
    Path(id): Path<String>,
    client: Client,
    b: Result<Json<TurnBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let req = body(b)?;
    let params = state.sampling(&req.sampling())?;
    let battle = load(&state, &id).await?;
    open(&battle)?;
    state
        .check_input(&req.text, &client, Some(&battle.id), None)
        .await?;
    let threads = threads(&state, &battle).await?;
    let (turn, jobs) = turns::begin_turn(&state, Some(&battle.id), &threads, &req.text).await?;
    Ok(turns::stream(
        state.clone(),
        jobs,
        params,
        turn,
        streaming(&battle),
    ))
}

/// `POST /api/battles/{id}/regenerate`.
pub async fn regenerate(
    State(state): State<Arc<ArenaState>>,
    Path(id): Path<String>,
    b: Result<Json<Sampling>, JsonRejection>,
) -> Result<Response, ApiError> {
    let sampling = optional_body(b)?;
    let params = state.sampling(&sampling)?;
    let battle = load(&state, &id).await?;
    open(&battle)?;
    let threads = threads(&state, &battle).await?;
    let (turn, jobs) = turns::begin_regenerate(&state, Some(&battle.id), &threads).await?;
    Ok(turns::stream(
        state.clone(),
        jobs,
        params,
        turn,
        streaming(&battle),
    ))
}

/// The body of a vote.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoteBody {
    /// `model_a`, `model_b`, `tie` or `tie (bothbad)`.
    pub winner: String,
}

/// `POST /api/battles/{id}/vote`: stored once per battle, on its latest turn, when both
/// answers to it are complete (`stop` or `length`); answers the names, their catalog info
/// (`null` for a model the catalog lacks) and whether the vote counts. The store checks the
/// answers with the battle locked, so no turn slips in between.
pub async fn vote(
    State(state): State<Arc<ArenaState>>,
    Path(id): Path<String>,
    client: Client,
    b: Result<Json<VoteBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let req = body(b)?;
    if !WINNERS.contains(&req.winner.as_str()) {
        return Err(ApiError::invalid_param(
            "winner",
            format!(
                "'winner' must be one of model_a, model_b, tie, tie (bothbad); got '{}'",
                req.winner
            ),
        ));
    }
    let battle = load(&state, &id).await?;
    if battle.votes > 0 {
        return Err(ApiError::conflict(
            "already_voted",
            "this battle already has its vote",
        ));
    }
    let threads = threads(&state, &battle).await?;
    let turn = threads[0].turns();
    if turn == 0 {
        return Err(not_finished("there is no answer yet"));
    }
    let answers: Vec<(char, &str, Option<&str>)> = threads
        .iter()
        .zip(['a', 'b'])
        .flat_map(|(t, side)| {
            t.messages
                .iter()
                .filter(|m| m.role == "assistant" && !m.superseded)
                .map(move |m| (side, m.content.as_str(), m.finish_reason.as_deref()))
        })
        .collect();
    let mut known = state.gateway.served_models(true);
    known.extend([battle.model_a.clone(), battle.model_b.clone()]);
    // Only anonymous votes rank models: a voter who saw the names is not a blind judge.
    let exclusion = if battle.anonymous {
        exclusion_reason(&answers, &known, &state.settings.identity_phrases)
    } else {
        Some(names_shown())
    };
    let first_prompt = threads[0]
        .messages
        .iter()
        .find(|m| m.role == "user")
        .map_or("", |m| m.content.as_str());
    let categories = arena_ratings::category::categorize(first_prompt, turn);
    let vote_id = random_id("v_");
    // The client rules are the store's: it measures the signals with the voter locked.
    let outcome = state
        .store
        .add_vote(&NewVote {
            id: vote_id.clone(),
            battle_id: battle.id.clone(),
            turn,
            winner: req.winner,
            voter_hash: client.hash,
            exclusion,
            limits: state.settings.vote_limits,
            categories: categories.clone(),
        })
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => {
                ApiError::conflict("already_voted", "this battle already has its vote")
            }
            StoreError::Unfinished(why) => not_finished(&why),
            other => store_error(other),
        })?;
    if let (Some(labeller), true) = (&state.labeller, battle.anonymous) {
        labeller.spawn(state.store.clone(), vote_id, first_prompt.to_string());
    }
    Ok(Json(json!({
        "model_a": battle.model_a,
        "model_b": battle.model_b,
        "info_a": state.catalog.info_json(&battle.model_a),
        "info_b": state.catalog.info_json(&battle.model_b),
        "counted": outcome.counted(),
        "reason": outcome.exclusion.as_ref().map(|e| &e.reason),
        "rule": outcome.exclusion.as_ref().map(|e| e.rule.key()),
        "categories": categories,
    })))
}

/// A vote refused because an answer is missing, still running or cut short.
fn not_finished(why: &str) -> ApiError {
    ApiError::conflict(
        "answers_not_finished",
        format!("vote once both answers are complete: {why} (regenerate an interrupted or failed answer)"),
    )
}
