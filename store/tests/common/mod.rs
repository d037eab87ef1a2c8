//! What the store's test files share: a fresh store on either backend, and a battle row.
#![allow(dead_code)]

use std::sync::Arc;

use arena_store::{ArenaStore, NewBattle, NewMessage, NewVote};
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

/// Turn 1 of battle `id` answered in full on both sides (`{id}-a`, `{id}-b`), so it can take
/// its vote.
pub async fn answer_both_sides(s: &Arc<dyn ArenaStore>, id: &str) {
    for side in ["a", "b"] {
        let row = |seq, role: &'static str, text: &str| NewMessage {
            conversation_id: format!("{id}-{side}"),
            seq,
            turn: 1,
            role,
            content: text.into(),
            finish_reason: (role == "assistant").then(|| "stop".into()),
            ..Default::default()
        };
        s.add_messages(&[row(0, "user", "Hi"), row(1, "assistant", "Hello")])
            .await
            .unwrap();
    }
}

/// Vote `v-{battle}` for `model_a` on turn 1 by `voter`, with no categories and the client
/// rules' default limits.
pub fn vote_for_a(battle: &str) -> NewVote {
    NewVote {
        id: format!("v-{battle}"),
        battle_id: battle.into(),
        turn: 1,
        winner: "model_a".into(),
        voter_hash: "voter".into(),
        exclusion: None,
        limits: Default::default(),
        categories: Vec::new(),
    }
}
