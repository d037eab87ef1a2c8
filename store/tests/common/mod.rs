//! What the store's test files share: a fresh store on either backend, and a battle row.
#![allow(dead_code)]

use std::sync::Arc;

use arena_store::{ArenaStore, NewBattle};
use arena_testkit::db;

/// Runs `body` with a fresh store on `backend` and its URL; the database lives as long as
/// the call.
pub async fn with_fresh_store(
    backend: &'static str,
    body: impl AsyncFnOnce(Arc<dyn ArenaStore>, String),
) {
    let dir = tempfile::tempdir().unwrap();
    let url = db::database_url(backend, dir.path()).await;
    let store = arena_store::connect(&url).await.expect("open the store");
    assert_eq!(store.backend(), backend);
    body(store, url).await;
}

/// A battle `id` of `a` against `b`, its conversations `{id}-a` and `{id}-b`.
pub fn battle(id: &str, a: &str, b: &str, anonymous: bool) -> NewBattle {
    NewBattle {
        id: id.into(),
        model_a: a.into(),
        model_b: b.into(),
        anonymous,
        conversation_a: format!("{id}-a"),
        conversation_b: format!("{id}-b"),
        client_hash: "client".into(),
        terms_version: None,
        pair_probability: None,
    }
}
