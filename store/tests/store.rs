//! The store suite: every test runs against SQLite and Postgres, each on a fresh database.

use arena_store::{
    ArenaStore, Exclusion, ExclusionRule, ExportFilter, NewFlag, NewMessage, NewRating, NewVote,
    OpenTurn, StoreError,
};
use arena_testkit::on_both_backends;
use std::future::Future;
use std::sync::Arc;

mod common;
use common::battle;

/// Runs `body` with a fresh store on `backend` (the setup of `on_both_backends!`).
async fn with_store<F, Fut>(backend: &'static str, body: F)
where
    F: FnOnce(Arc<dyn ArenaStore>) -> Fut,
    Fut: Future<Output = ()>,
{
    common::with_fresh_store(backend, async |s, _| body(s).await).await;
}

fn vote(id: &str, battle: &str, winner: &str, counted: bool) -> NewVote {
    NewVote {
        id: id.into(),
        battle_id: battle.into(),
        turn: 1,
        winner: winner.into(),
        voter_hash: "voter".into(),
        exclusion: (!counted).then(|| Exclusion {
            rule: ExclusionRule::AnswerError,
            reason: "answer ended in an error".into(),
        }),
        limits: Default::default(),
        categories: Vec::new(),
    }
}

fn message(conversation: &str, seq: i64, turn: i64, role: &'static str, text: &str) -> NewMessage {
    NewMessage {
        conversation_id: conversation.into(),
        seq,
        turn,
        role,
        content: text.into(),
        finish_reason: (role == "assistant").then(|| "stop".into()),
        ..Default::default()
    }
}

/// Turn 1 of a battle, answered in full on both sides, so it can take its vote.
async fn answered(s: &Arc<dyn ArenaStore>, battle: &str) {
    common::answer_both_sides(s, battle).await;
}

on_both_backends!(
    battles_round_trip_and_count_their_votes,
    with_store,
    |s: Arc<dyn ArenaStore>| async move {
        assert_eq!(s.last_vote_ms().await.unwrap(), 0);
        s.create_battle(&battle("b1", "alpha", "beta", true))
            .await
            .unwrap();
        let b = s.battle("b1").await.unwrap().unwrap();
        assert_eq!(
            (b.model_a.as_str(), b.model_b.as_str(), b.anonymous, b.votes),
            ("alpha", "beta", true, 0)
        );
        assert_eq!(b.conversation_a, "b1-a");
        assert!(s.battle("nope").await.unwrap().is_none());
        let c = s.conversation("b1-b").await.unwrap().unwrap();
        assert_eq!((c.mode.as_str(), c.model.as_str()), ("battle", "beta"));
        answered(&s, "b1").await;
        s.add_vote(&vote("v1", "b1", "model_a", true))
            .await
            .unwrap();
        assert_eq!(s.battle("b1").await.unwrap().unwrap().votes, 1);
    }
);

on_both_backends!(
    one_vote_per_battle_turn_is_enforced_by_the_database,
    with_store,
    |s: Arc<dyn ArenaStore>| async move {
        s.create_battle(&battle("b1", "alpha", "beta", true))
            .await
            .unwrap();
        answered(&s, "b1").await;
        s.add_vote(&vote("v1", "b1", "model_a", true))
            .await
            .unwrap();
        let e = s
            .add_vote(&vote("v2", "b1", "model_b", true))
            .await
            .unwrap_err();
        assert!(matches!(e, StoreError::Conflict(_)), "{e}");
        // A winner outside the four values is refused by a CHECK constraint.
        s.create_battle(&battle("b2", "alpha", "beta", true))
            .await
            .unwrap();
        answered(&s, "b2").await;
        let e = s
            .add_vote(&vote("v3", "b2", "alpha", true))
            .await
            .unwrap_err();
        assert!(matches!(e, StoreError::Database(_)), "{e}");
    }
);

on_both_backends!(
    messages_keep_order_and_regenerations_supersede,
    with_store,
    |s: Arc<dyn ArenaStore>| async move {
        s.create_chat("c1", "alpha", "client", None).await.unwrap();
        s.add_messages(&[
            message("c1", 0, 1, "user", "Hi"),
            message("c1", 1, 1, "assistant", "Hello"),
        ])
        .await
        .unwrap();
        // A taken position is a conflict, so two requests cannot both start turn 2.
        let e = s
            .add_messages(&[message("c1", 1, 2, "user", "again")])
            .await
            .unwrap_err();
        assert!(matches!(e, StoreError::Conflict(_)), "{e}");
        s.open_turn(&OpenTurn {
            battle_id: None,
            supersede: vec![("c1".into(), 1)],
            rows: vec![message("c1", 2, 1, "assistant", "Hey")],
        })
        .await
        .unwrap();
        let m = s.messages("c1").await.unwrap();
        let rows: Vec<(i64, &str, &str, bool)> = m
            .iter()
            .map(|m| (m.seq, m.role.as_str(), m.content.as_str(), m.superseded))
            .collect();
        assert_eq!(
            rows,
            vec![
                (0, "user", "Hi", false),
                (1, "assistant", "Hello", true),
                (2, "assistant", "Hey", false)
            ]
        );
        s.add_rating(&NewRating {
            id: "r1".into(),
            conversation_id: "c1".into(),
            turn: 1,
            rating: "upvote".into(),
            voter_hash: "v".into(),
        })
        .await
        .unwrap();
        let bad = NewRating {
            id: "r2".into(),
            rating: "meh".into(),
            conversation_id: "c1".into(),
            turn: 1,
            voter_hash: "v".into(),
        };
        assert!(s.add_rating(&bad).await.is_err());
        s.add_flag(&NewFlag {
            id: "f1".into(),
            conversation_id: Some("c1".into()),
            battle_id: None,
            content: "bad words".into(),
            reason: "rule".into(),
            source: "local".into(),
            client_hash: "client".into(),
        })
        .await
        .unwrap();
    }
);

on_both_backends!(
    win_rate_view_counts_only_counted_anonymous_votes,
    with_store,
    |s: Arc<dyn ArenaStore>| async move {
        // alpha beats beta, ties with gamma; a named battle and an excluded vote do not count.
        for (id, a, b, anonymous, winner, counted) in [
            ("b1", "alpha", "beta", true, "model_a", true),
            ("b2", "gamma", "alpha", true, "tie", true),
            ("b3", "beta", "alpha", true, "model_a", false),
            ("b4", "beta", "alpha", false, "model_a", true),
            ("b5", "beta", "gamma", true, "tie (bothbad)", true),
        ] {
            s.create_battle(&battle(id, a, b, anonymous)).await.unwrap();
            answered(&s, id).await;
            s.add_vote(&vote(&format!("v{id}"), id, winner, counted))
                .await
                .unwrap();
        }
        let stats = s.model_stats().await.unwrap();
        let row = |m: &str| stats.iter().find(|r| r.model == m).cloned().unwrap();
        let alpha = row("alpha");
        assert_eq!(
            (alpha.battles, alpha.wins, alpha.losses, alpha.ties),
            (2, 1, 0, 1)
        );
        assert!((alpha.win_rate - 0.75).abs() < 1e-9);
        let beta = row("beta");
        assert_eq!(
            (beta.battles, beta.wins, beta.losses, beta.ties),
            (2, 0, 1, 1)
        );
        assert!((beta.win_rate - 0.25).abs() < 1e-9);
        assert_eq!(stats[0].model, "alpha");
        assert_eq!(stats.len(), 3);
    }
);

#[tokio::test]
async fn an_unreachable_database_is_a_clear_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://arena:secret@127.0.0.1:{port}/arena");
    let e = arena_store::connect(&url).await.err().unwrap().to_string();
    assert!(
        e.contains("cannot open the database at postgres://arena:***@127.0.0.1"),
        "{e}"
    );
    assert!(!e.contains("secret"), "{e}");
    let e = arena_store::connect("mysql://x")
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("neither postgres"), "{e}");
    let e = arena_store::connect("sqlite:///proc/no/such/dir/a.db")
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("cannot open the database"), "{e}");
}

#[tokio::test]
async fn sqlite_creates_its_file_and_directory_on_first_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new/home/arena.db");
    let s = arena_store::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    s.ping().await.unwrap();
    assert!(path.exists());
    drop(s);
    // A second start reuses the file and its migrations.
    let s = arena_store::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    s.create_chat("c", "m", "h", None).await.unwrap();
}

on_both_backends!(
    counted_battles_and_exports_stream_in_vote_order,
    with_store,
    |s: Arc<dyn ArenaStore>| async move {
        for (id, anonymous, counted) in
            [("b1", true, true), ("b2", true, false), ("b3", false, true)]
        {
            s.create_battle(&battle(id, "alpha", "beta", anonymous))
                .await
                .unwrap();
            for side in ["a", "b"] {
                let conv = format!("{id}-{side}");
                s.add_messages(&[
                    message(&conv, 0, 1, "user", "Hi"),
                    message(&conv, 1, 1, "assistant", &format!("{id} {side} old")),
                ])
                .await
                .unwrap();
                s.open_turn(&OpenTurn {
                    battle_id: Some(id.into()),
                    supersede: vec![(conv.clone(), 1)],
                    rows: vec![message(&conv, 2, 1, "assistant", &format!("{id} {side}"))],
                })
                .await
                .unwrap();
            }
            s.add_vote(&vote(&format!("v{id}"), id, "model_b", counted))
                .await
                .unwrap();
            // Distinct timestamps keep the order of the votes observable.
            tokio::time::sleep(std::time::Duration::from_millis(3)).await;
        }
        let mut rows = Vec::new();
        let n = s
            .counted_battles(false, None, &mut |r| {
                rows.push(r);
                Ok(())
            })
            .await
            .unwrap();
        // Only the counted anonymous vote rates models.
        assert_eq!(n, 1);
        assert_eq!(
            (rows[0].model_a.as_str(), rows[0].winner.as_str()),
            ("alpha", "model_b")
        );
        // Style is read only when asked for.
        assert_eq!(rows[0].conv_metadata, None);

        let mut battles = Vec::new();
        assert_eq!(
            s.export_battles(ExportFilter::default(), &mut |b| {
                battles.push(b);
                Ok(())
            })
            .await
            .unwrap(),
            2
        );
        assert_eq!(battles[0].battle_id, "b1");
        assert_eq!(battles[1].battle_id, "b3");
        let conv: Vec<(&str, &str)> = battles[0]
            .conversation_b
            .iter()
            .map(|(r, c)| (r.as_str(), c.as_str()))
            .collect();
        assert_eq!(conv, vec![("user", "Hi"), ("assistant", "b1 b")]);
        let mut all = 0;
        assert_eq!(
            s.export_battles(
                ExportFilter {
                    all_votes: true,
                    ..Default::default()
                },
                &mut |_| {
                    all += 1;
                    Ok(())
                }
            )
            .await
            .unwrap(),
            3
        );
        assert_eq!(all, 3);

        let mut conversations = Vec::new();
        assert_eq!(
            s.export_conversations(ExportFilter::default(), &mut |c| {
                conversations.push(c);
                Ok(())
            })
            .await
            .unwrap(),
            6
        );
        assert!(conversations.iter().all(|c| c.messages.len() == 2));
        // A failing sink stops the stream with its error.
        let e = s
            .export_conversations(ExportFilter::default(), &mut |_| {
                Err(StoreError::Config("disk full".into()))
            })
            .await
            .unwrap_err();
        assert!(e.to_string().contains("disk full"));
        let newest = s.last_vote_ms().await.unwrap();
        assert!(
            newest > arena_ratings::clock::unix_ms() as i64 - 60_000,
            "{newest}"
        );
    }
);

on_both_backends!(
    a_vote_records_the_style_of_the_answers_it_judged,
    with_store,
    |s: Arc<dyn ArenaStore>| async move {
        let answer = |conv: &str, seq, text: &str, tokens: Option<i64>| NewMessage {
            completion_tokens: tokens,
            prompt_tokens: Some(11),
            ..message(conv, seq, 1, "assistant", text)
        };
        for (id, tokens_b) in [("b1", Some(5)), ("b2", None)] {
            s.create_battle(&battle(id, "alpha", "beta", true))
                .await
                .unwrap();
            let (a, b) = (format!("{id}-a"), format!("{id}-b"));
            s.add_messages(&[
                message(&a, 0, 1, "user", "Hi"),
                answer(&a, 1, "# Superseded\n# twice", Some(900)),
                message(&b, 0, 1, "user", "Hi"),
                answer(&b, 1, "plain **bold**", tokens_b),
            ])
            .await
            .unwrap();
            // A regeneration replaces A's answer before the vote: the vote judges the new one.
            s.open_turn(&OpenTurn {
                battle_id: Some(id.into()),
                supersede: vec![(a.clone(), 1)],
                rows: vec![answer(
                    &a,
                    2,
                    "## Part\n- one\n- two\n```\n# code\n```",
                    Some(40),
                )],
            })
            .await
            .unwrap();
            s.add_vote(&vote(&format!("v{id}"), id, "model_a", true))
                .await
                .unwrap();
        }
        let styled = arena_store::ratings::counted_styled(&*s, None)
            .await
            .unwrap();
        // b2's answer B has no token count: left out of style control, not guessed.
        assert_eq!(styled.without_style, 1);
        assert_eq!(styled.battles.len(), 1);
        let (a, b) = (styled.battles[0].style_a, styled.battles[0].style_b);
        assert_eq!((a.tokens, a.headers, a.lists, a.bold), (40, 1, 2, 0));
        assert_eq!((b.tokens, b.headers, b.lists, b.bold), (5, 0, 0, 1));
        // The export carries it in the public dataset's shape.
        let mut out = Vec::new();
        arena_store::export::export(
            &*s,
            arena_store::export::Format::ChatbotArena,
            ExportFilter::default(),
            &mut out,
        )
        .await
        .unwrap();
        let first: serde_json::Value =
            serde_json::from_str(String::from_utf8(out).unwrap().lines().next().unwrap()).unwrap();
        let meta = &first["conv_metadata"];
        assert_eq!(meta["sum_assistant_a_tokens"], 40);
        assert_eq!(meta["header_count_a"]["h2"], 1);
        assert_eq!(meta["list_count_a"]["unordered"], 2);
        assert_eq!(meta["bold_count_b"]["**"], 1);
        assert_eq!(meta["context_b_tokens"], 11);
    }
);

on_both_backends!(
    votes_carry_categories_that_filter_the_counted_battles,
    with_store,
    |s: Arc<dyn ArenaStore>| async move {
        let tags = |t: &[&str]| t.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        for (id, categories, counted) in [
            ("b1", tags(&["coding", "english"]), true),
            ("b2", tags(&["english"]), true),
            ("b3", tags(&["coding"]), false),
        ] {
            s.create_battle(&battle(id, "alpha", "beta", true))
                .await
                .unwrap();
            answered(&s, id).await;
            s.add_vote(&NewVote {
                categories,
                ..vote(&format!("v{id}"), id, "model_a", counted)
            })
            .await
            .unwrap();
        }
        let count = |category: Option<&'static str>| {
            let s = s.clone();
            async move {
                s.counted_battles(false, category, &mut |_| Ok(()))
                    .await
                    .unwrap()
            }
        };
        assert_eq!(count(None).await, 2);
        // The uncounted coding vote stays out of the coding board too.
        assert_eq!(count(Some("coding")).await, 1);
        assert_eq!(count(Some("english")).await, 2);
        assert_eq!(count(Some("math")).await, 0);
        assert_eq!(
            s.category_counts().await.unwrap(),
            vec![("english".to_string(), 2), ("coding".to_string(), 1)]
        );
        // Tags written with the vote are not late tags.
        assert_eq!(s.last_tag_ms().await.unwrap(), 0);
        // The labeller's later tag is added once, however often it is sent.
        let before = arena_ratings::clock::unix_ms() as i64;
        for _ in 0..2 {
            s.add_vote_categories("vb2", &tags(&["hard_prompt", "english"]))
                .await
                .unwrap();
        }
        assert_eq!(count(Some("hard_prompt")).await, 1);
        assert_eq!(count(Some("english")).await, 2);
        // ...and moves the version caches of the leaderboard compare.
        assert!(s.last_tag_ms().await.unwrap() >= before);
        // A tag for a vote that does not exist is refused by the database.
        assert!(s.add_vote_categories("nope", &tags(&["x"])).await.is_err());
    }
);

on_both_backends!(
    one_leaderboard_snapshot_is_kept_per_day,
    with_store,
    |s: Arc<dyn ArenaStore>| async move {
        let record = |day: &str, votes| arena_store::SnapshotRecord {
            day: day.into(),
            created_ms: 1,
            votes,
            vote_set_sha256: format!("sha-{votes}"),
        };
        assert!(s
            .add_snapshot(&record("2026-12-01", 5), "{\"a\":1}")
            .await
            .unwrap());
        // The day's first snapshot stands: a second replica's later one is not kept.
        assert!(!s
            .add_snapshot(&record("2026-12-01", 9), "{\"b\":2}")
            .await
            .unwrap());
        assert!(s
            .add_snapshot(&record("2026-12-02", 7), "{\"c\":3}")
            .await
            .unwrap());
        let kept = s.snapshots(10).await.unwrap();
        assert_eq!(kept, vec![record("2026-12-02", 7), record("2026-12-01", 5)]);
        assert_eq!(s.snapshots(1).await.unwrap().len(), 1);
        assert_eq!(
            s.snapshot("2026-12-01").await.unwrap().as_deref(),
            Some("{\"a\":1}")
        );
        assert_eq!(s.snapshot("2026-11-30").await.unwrap(), None);
    }
);
