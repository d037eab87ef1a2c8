//! The terms of use a conversation began under: stored with each conversation, and the export
//! filter that leaves out what was begun without them. Every test runs on SQLite and Postgres.

use std::sync::Arc;

use arena_store::{ArenaStore, ExportFilter, NewBattle, NewMessage};
use arena_testkit::{db, on_both_backends};

mod common;

const VERSION: &str = "0123456789abcdef";

use common::with_fresh_store as fresh;

fn answered(conversation: &str) -> [NewMessage; 2] {
    let row = |seq, role: &'static str| NewMessage {
        conversation_id: conversation.into(),
        seq,
        turn: 1,
        role,
        content: format!("{conversation} {role}"),
        finish_reason: (role == "assistant").then(|| "stop".into()),
        ..Default::default()
    };
    [row(0, "user"), row(1, "assistant")]
}

/// A battle answered on both sides and voted on, begun under `terms`.
async fn voted_battle(s: &Arc<dyn ArenaStore>, id: &str, terms: Option<&str>) {
    s.create_battle(&NewBattle {
        terms_version: terms.map(str::to_string),
        pair_probability: None,
        ..common::battle(id, "alpha", "beta", true)
    })
    .await
    .unwrap();
    for side in ["a", "b"] {
        s.add_messages(&answered(&format!("{id}-{side}")))
            .await
            .unwrap();
    }
    s.add_vote(&common::vote_for_a(id)).await.unwrap();
    // Distinct timestamps keep the export's order observable.
    tokio::time::sleep(std::time::Duration::from_millis(3)).await;
}

async fn battle_ids(s: &Arc<dyn ArenaStore>, filter: ExportFilter) -> Vec<String> {
    let mut ids = Vec::new();
    let n = s
        .export_battles(filter, &mut |b| {
            ids.push(b.battle_id);
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(n as usize, ids.len());
    ids
}

async fn conversation_ids(s: &Arc<dyn ArenaStore>, filter: ExportFilter) -> Vec<String> {
    let mut ids = Vec::new();
    let n = s
        .export_conversations(filter, &mut |c| {
            ids.push(c.id);
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(n as usize, ids.len());
    ids
}

async fn stored_and_filtered(backend: &'static str) {
    fresh(backend, async |s, url| {
        voted_battle(&s, "accepted", Some(VERSION)).await;
        voted_battle(&s, "api", None).await;
        s.create_chat("chat-accepted", "alpha", "client", Some(VERSION))
            .await
            .unwrap();
        s.add_messages(&answered("chat-accepted")).await.unwrap();
        s.create_chat("chat-api", "alpha", "client", None)
            .await
            .unwrap();
        s.add_messages(&answered("chat-api")).await.unwrap();

        // Stored with each conversation, both sides of a battle included.
        for (id, want) in [
            ("accepted-a", Some(VERSION)),
            ("accepted-b", Some(VERSION)),
            ("api-a", None),
            ("api-b", None),
            ("chat-accepted", Some(VERSION)),
            ("chat-api", None),
        ] {
            let c = s.conversation(id).await.unwrap().unwrap();
            assert_eq!(c.terms_version.as_deref(), want, "{id}");
        }
        let raw = db::rows(
            &url,
            "SELECT id, terms_version FROM conversations ORDER BY id",
        )
        .await;
        assert_eq!(raw[0], vec!["accepted-a".to_string(), VERSION.to_string()]);
        assert_eq!(raw[2], vec!["api-a".to_string(), String::new()]);

        // Without the filter everything goes out; with it, only what was accepted.
        let everything = ExportFilter::default();
        let accepted = ExportFilter {
            accepted_terms_only: true,
            ..Default::default()
        };
        assert_eq!(battle_ids(&s, everything).await, ["accepted", "api"]);
        assert_eq!(battle_ids(&s, accepted).await, ["accepted"]);
        assert_eq!(
            battle_ids(
                &s,
                ExportFilter {
                    all_votes: true,
                    accepted_terms_only: true
                }
            )
            .await,
            ["accepted"]
        );
        assert_eq!(
            conversation_ids(&s, everything).await,
            [
                "accepted-a",
                "accepted-b",
                "api-a",
                "api-b",
                "chat-accepted",
                "chat-api"
            ]
        );
        assert_eq!(
            conversation_ids(&s, accepted).await,
            ["accepted-a", "accepted-b", "chat-accepted"]
        );
    })
    .await;
}
on_both_backends!(
    terms_versions_are_stored_and_the_export_can_leave_out_conversations_without_them,
    stored_and_filtered
);

async fn one_side_without_terms(backend: &'static str) {
    fresh(backend, async |s, url| {
        voted_battle(&s, "mixed", Some(VERSION)).await;
        // A row written by hand (an older controller, an operator): one side lacks the terms.
        let _ = db::rows(
            &url,
            "UPDATE conversations SET terms_version = NULL WHERE id = 'mixed-b'",
        )
        .await;
        let accepted = ExportFilter {
            accepted_terms_only: true,
            ..Default::default()
        };
        assert!(battle_ids(&s, accepted).await.is_empty());
        assert_eq!(conversation_ids(&s, accepted).await, ["mixed-a"]);
    })
    .await;
}
on_both_backends!(
    a_battle_with_one_side_without_terms_is_left_out,
    one_side_without_terms
);
