//! Direct chat with one chosen model, and ratings of its answers.

use std::sync::Arc;

use arena_store::{ConversationRecord, NewRating};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::input::{Sampling, TurnBody};
use super::terms::AcceptedTerms;
use super::turns::{self, Streaming, Thread};
use super::{body, optional_body, store_error, ArenaState, Client};
use crate::error::ApiError;
use crate::ids::random_id;

/// The body of `POST /api/chats`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewChatBody {
    /// The model to chat with.
    pub model: String,
}

/// `POST /api/chats`; the terms of use the client accepted are stored with the chat.
pub async fn create(
    State(state): State<Arc<ArenaState>>,
    client: Client,
    AcceptedTerms(terms_version): AcceptedTerms,
    b: Result<Json<NewChatBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let req = body(b)?;
    if !state.gateway.served_models(false).contains(&req.model) {
        return Err(ApiError::model_not_found(&req.model));
    }
    let id = random_id("c_");
    state
        .store
        .create_chat(&id, &req.model, &client.hash, terms_version.as_deref())
        .await
        .map_err(store_error)?;
    Ok(Json(json!({"id": id, "model": req.model})))
}

async fn load(state: &ArenaState, id: &str) -> Result<ConversationRecord, ApiError> {
    state
        .store
        .conversation(id)
        .await
        .map_err(store_error)?
        .filter(|c| c.mode == "direct")
        .ok_or_else(|| ApiError::not_found(format!("no chat with id '{id}'")))
}

fn direct() -> Streaming {
    Streaming {
        hide: Vec::new(),
        in_battle: false,
    }
}

/// `POST /api/chats/{id}/turns`.
pub async fn turn(
    State(state): State<Arc<ArenaState>>,
    Path(id): Path<String>,
    client: Client,
    b: Result<Json<TurnBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let req = body(b)?;
    let params = state.sampling(&req.sampling())?;
    let chat = load(&state, &id).await?;
    state
        .check_input(&req.text, &client, None, Some(&chat.id))
        .await?;
    let thread = Thread::load(&state, &chat.id, &chat.model).await?;
    let (turn, jobs) = turns::begin_turn(&state, None, &[thread], &req.text).await?;
    Ok(turns::stream(state.clone(), jobs, params, turn, direct()))
}

/// `POST /api/chats/{id}/regenerate`.
pub async fn regenerate(
    State(state): State<Arc<ArenaState>>,
    Path(id): Path<String>,
    b: Result<Json<Sampling>, JsonRejection>,
) -> Result<Response, ApiError> {
    let sampling = optional_body(b)?;
    let params = state.sampling(&sampling)?;
    let chat = load(&state, &id).await?;
    let thread = Thread::load(&state, &chat.id, &chat.model).await?;
    let (turn, jobs) = turns::begin_regenerate(&state, None, &[thread]).await?;
    Ok(turns::stream(state.clone(), jobs, params, turn, direct()))
}

/// The body of a rating.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RatingBody {
    /// `upvote`, `downvote` or `flag`.
    pub rating: String,
}

/// `POST /api/chats/{id}/rating`: about the latest answer.
pub async fn rating(
    State(state): State<Arc<ArenaState>>,
    Path(id): Path<String>,
    client: Client,
    b: Result<Json<RatingBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let req = body(b)?;
    if !["upvote", "downvote", "flag"].contains(&req.rating.as_str()) {
        return Err(ApiError::invalid_param(
            "rating",
            format!(
                "'rating' must be upvote, downvote or flag; got '{}'",
                req.rating
            ),
        ));
    }
    let chat = load(&state, &id).await?;
    let thread = Thread::load(&state, &chat.id, &chat.model).await?;
    if thread.current_answer().is_none() {
        return Err(ApiError::conflict(
            "answers_not_finished",
            "rate an answer after it has finished",
        ));
    }
    state
        .store
        .add_rating(&NewRating {
            id: random_id("r_"),
            conversation_id: chat.id,
            turn: thread.turns(),
            rating: req.rating,
            voter_hash: client.hash,
        })
        .await
        .map_err(store_error)?;
    Ok(Json(json!({"ok": true})))
}
