//! Votes you can trust: the signals stored with each vote (delay after the answers, the
//! client's votes in the trailing hour, its same-side streak), the client rules applied to
//! them, and the per-rule counts of excluded votes. Every test runs on SQLite and Postgres.

use std::sync::Arc;

use arena_store::{
    ArenaStore, ExcludedVotes, Exclusion, ExclusionRule, NewVote, VoteLimits, VoteOutcome,
};
use arena_testkit::db::rows;
use arena_testkit::on_both_backends;

mod common;

async fn fresh(backend: &'static str, body: impl AsyncFnOnce(Arc<dyn ArenaStore>, String)) {
    common::with_fresh_store(backend, body).await;
}

fn now() -> i64 {
    arena_ratings::clock::unix_ms() as i64
}

/// An anonymous battle `id` with turn 1 answered in full on both sides (stored ended, so
/// both answers end now).
async fn answered(s: &Arc<dyn ArenaStore>, id: &str, anonymous: bool) {
    s.create_battle(&common::battle(id, "alpha", "beta", anonymous))
        .await
        .unwrap();
    common::answer_both_sides(s, id).await;
}

fn vote(battle: &str, voter: &str, winner: &str, limits: VoteLimits) -> NewVote {
    NewVote {
        id: format!("v-{battle}"),
        battle_id: battle.into(),
        turn: 1,
        winner: winner.into(),
        voter_hash: voter.into(),
        exclusion: None,
        limits,
        categories: Vec::new(),
    }
}

/// A fresh answered battle `id` and `voter`'s vote on it.
async fn cast(
    s: &Arc<dyn ArenaStore>,
    id: &str,
    voter: &str,
    winner: &str,
    limits: VoteLimits,
) -> VoteOutcome {
    answered(s, id, true).await;
    s.add_vote(&vote(id, voter, winner, limits)).await.unwrap()
}

/// The vote's stored row: counted, rule, reason, delay, hour count, streak (NULL as "").
async fn stored(url: &str, battle: &str) -> Vec<String> {
    let got = rows(
        url,
        &format!(
            "SELECT CASE WHEN counted THEN 'yes' ELSE 'no' END, exclusion_rule, excluded_reason, \
             answer_to_vote_ms, client_votes_hour, same_side_streak FROM votes \
             WHERE battle_id = '{battle}'"
        ),
    )
    .await;
    assert_eq!(got.len(), 1, "{got:?}");
    got.into_iter().next().unwrap()
}

const OFF: VoteLimits = VoteLimits {
    min_vote_delay_ms: 0,
    max_votes_per_hour: 0,
    max_same_side_streak: 0,
};

async fn delay_after_the_later_answer(backend: &'static str) {
    fresh(backend, async |s, url| {
        // Answers stored already ended, and answers ended by an update, get their end.
        answered(&s, "b1", true).await;
        let ends = rows(
            &url,
            "SELECT role, finished_ms FROM messages WHERE conversation_id = 'b1-a' ORDER BY seq",
        )
        .await;
        assert_eq!(ends[0], ["user", ""]);
        let end: i64 = ends[1][1].parse().unwrap();
        assert!((now() - end).abs() < 60_000, "{ends:?}");
        // The later answer ended 5 s ago, the other 10 s ago: the delay is about 5 s.
        let t = now();
        rows(&url, &format!("UPDATE messages SET finished_ms = {} WHERE conversation_id = 'b1-a' AND role = 'assistant'", t - 10_000)).await;
        rows(&url, &format!("UPDATE messages SET finished_ms = {} WHERE conversation_id = 'b1-b' AND role = 'assistant'", t - 5_000)).await;
        let out = s.add_vote(&vote("b1", "v", "tie", OFF)).await.unwrap();
        let delay = out.signals.answer_to_vote_ms.unwrap();
        assert!((5_000..10_000).contains(&delay), "{delay}");
        assert!(out.counted());
        assert_eq!(stored(&url, "b1").await[3], delay.to_string());

        // Sooner than the minimum: stored, not counted, with the rule and a reason.
        let limits = VoteLimits { min_vote_delay_ms: 60_000, ..OFF };
        let out = cast(&s, "b2", "v", "tie", limits).await;
        let e = out.exclusion.clone().expect("too fast");
        assert_eq!(e.rule, ExclusionRule::TooFast);
        assert!(e.reason.contains("(the minimum is 60 s)"), "{}", e.reason);
        let row = stored(&url, "b2").await;
        assert_eq!(&row[..3], ["no", "too_fast", e.reason.as_str()]);
        assert!(row[3].parse::<i64>().unwrap() < 60_000, "{row:?}");

        // An answer that ends "after" the vote (another replica's clock) reads as no delay.
        answered(&s, "b3", true).await;
        rows(&url, &format!("UPDATE messages SET finished_ms = {} WHERE conversation_id = 'b3-b' AND role = 'assistant'", now() + 60_000)).await;
        let out = s.add_vote(&vote("b3", "v", "tie", OFF)).await.unwrap();
        assert_eq!(out.signals.answer_to_vote_ms, Some(0));

        // An answer whose end was never recorded: no delay, and no rule judges it.
        answered(&s, "b4", true).await;
        rows(&url, "UPDATE messages SET finished_ms = NULL WHERE conversation_id = 'b4-a'").await;
        let out = s.add_vote(&vote("b4", "v", "tie", limits)).await.unwrap();
        assert_eq!(out.signals.answer_to_vote_ms, None);
        assert!(out.counted(), "{out:?}");
        assert_eq!(stored(&url, "b4").await[..4], ["yes", "", "", ""]);
    })
    .await;
}
on_both_backends!(
    the_delay_runs_from_the_later_answers_end_to_the_vote,
    delay_after_the_later_answer
);

async fn votes_in_the_trailing_hour(backend: &'static str) {
    fresh(backend, async |s, url| {
        for (i, battle) in ["h1", "h2", "h3"].into_iter().enumerate() {
            let out = cast(&s, battle, "v", "tie", OFF).await;
            assert_eq!(out.signals.client_votes_hour, i as i64 + 1);
        }
        // Another voter counts alone.
        assert_eq!(
            cast(&s, "w1", "w", "tie", OFF)
                .await
                .signals
                .client_votes_hour,
            1
        );
        // Votes older than an hour leave the window.
        rows(
            &url,
            "UPDATE votes SET created_ms = created_ms - 3600001 WHERE battle_id IN ('h1', 'h2')",
        )
        .await;
        assert_eq!(
            cast(&s, "h4", "v", "tie", OFF)
                .await
                .signals
                .client_votes_hour,
            2
        );
        // Past the limit: stored, not counted, saying how many.
        let limits = VoteLimits {
            max_votes_per_hour: 2,
            ..OFF
        };
        let out = cast(&s, "h5", "v", "tie", limits).await;
        let e = out.exclusion.expect("too many");
        assert_eq!(e.rule, ExclusionRule::TooManyVotes);
        assert_eq!(
            e.reason,
            "3 votes from this client in the last hour (at most 2 count)"
        );
        let row = stored(&url, "h5").await;
        assert_eq!(row[..3], ["no", "too_many_votes", e.reason.as_str()]);
        assert_eq!(row[4], "3");
        // Excluded votes are the client's votes too.
        assert_eq!(
            cast(&s, "h6", "v", "tie", OFF)
                .await
                .signals
                .client_votes_hour,
            4
        );
        assert!(cast(&s, "w2", "w", "tie", limits).await.counted());
    })
    .await;
}
on_both_backends!(
    the_hour_counts_one_voters_votes_in_the_trailing_hour,
    votes_in_the_trailing_hour
);

async fn same_side_streaks(backend: &'static str) {
    fresh(backend, async |s, url| {
        let streaks = [
            ("v", "model_a", 1),
            ("v", "model_a", 2),
            // Another voter's votes neither break nor extend it.
            ("w", "model_a", 1),
            ("w", "model_b", 1),
            ("v", "model_a", 3),
            ("v", "tie", 0),
            ("v", "model_a", 1),
            ("v", "model_b", 1),
            ("v", "model_b", 2),
            ("v", "tie (bothbad)", 0),
            ("w", "model_b", 2),
        ];
        for (i, (voter, winner, streak)) in streaks.into_iter().enumerate() {
            let out = cast(&s, &format!("s{i}"), voter, winner, OFF).await;
            assert_eq!(
                out.signals.same_side_streak, streak,
                "{i}: {voter} {winner}"
            );
        }
        // Past the limit: the third in a row is excluded, and so is every next one.
        let limits = VoteLimits {
            max_same_side_streak: 2,
            ..OFF
        };
        assert!(cast(&s, "x1", "x", "model_b", limits).await.counted());
        assert!(cast(&s, "x2", "x", "model_b", limits).await.counted());
        let e = cast(&s, "x3", "x", "model_b", limits)
            .await
            .exclusion
            .expect("streak");
        assert_eq!(e.rule, ExclusionRule::SameSideStreak);
        assert_eq!(
            e.reason,
            "3 votes in a row for model B from this client (at most 2 in a row count)"
        );
        let row = stored(&url, "x3").await;
        assert_eq!(
            (row[0].as_str(), row[1].as_str(), row[5].as_str()),
            ("no", "same_side_streak", "3")
        );
        let out = cast(&s, "x4", "x", "model_b", limits).await;
        assert_eq!((out.counted(), out.signals.same_side_streak), (false, 4));
        // The other side starts over and counts.
        assert!(cast(&s, "x5", "x", "model_a", limits).await.counted());
    })
    .await;
}
on_both_backends!(
    streaks_follow_one_voters_sides_and_ties_break_them,
    same_side_streaks
);

async fn concurrent_votes(backend: &'static str) {
    fresh(backend, async |s, _| {
        // Two votes of one client at once, on two battles, after an earlier one: the voter's
        // lock makes them take turns, so neither misses the other.
        for i in 0..6 {
            let voter = format!("v{i}");
            cast(&s, &format!("c{i}w"), &voter, "model_a", OFF).await;
            let (x, y) = (format!("c{i}x"), format!("c{i}y"));
            answered(&s, &x, true).await;
            answered(&s, &y, true).await;
            let (vx, vy) = (
                vote(&x, &voter, "model_a", OFF),
                vote(&y, &voter, "model_a", OFF),
            );
            let (a, b) = tokio::join!(s.add_vote(&vx), s.add_vote(&vy));
            let (a, b) = (a.unwrap().signals, b.unwrap().signals);
            let mut streaks = [a.same_side_streak, b.same_side_streak];
            streaks.sort();
            assert_eq!(streaks, [2, 3], "round {i}");
            let mut hours = [a.client_votes_hour, b.client_votes_hour];
            hours.sort();
            assert_eq!(hours, [2, 3], "round {i}");
        }
    })
    .await;
}
on_both_backends!(
    concurrent_votes_of_one_client_see_each_other,
    concurrent_votes
);

async fn counts_per_rule(backend: &'static str) {
    fresh(backend, async |s, url| {
        assert_eq!(s.excluded_votes().await.unwrap(), []);
        let given = |rule, battle: &str| NewVote {
            exclusion: Some(Exclusion {
                rule,
                reason: "said by the caller".into(),
            }),
            ..vote(battle, "v", "tie", OFF)
        };
        for (battle, rule) in [
            ("r1", ExclusionRule::IdentityLeak),
            ("r2", ExclusionRule::AnswerError),
            ("r3", ExclusionRule::IdentityLeak),
        ] {
            answered(&s, battle, true).await;
            let out = s.add_vote(&given(rule, battle)).await.unwrap();
            // The caller's reason wins over the client rules, and is stored as given.
            assert_eq!(out.exclusion.unwrap().rule, rule);
        }
        assert_eq!(
            stored(&url, "r1").await[..3],
            ["no", "identity_leak", "said by the caller"]
        );
        let too_fast = VoteLimits {
            min_vote_delay_ms: 60_000,
            ..OFF
        };
        for battle in ["f1", "f2", "f3"] {
            assert!(
                !cast(&s, battle, &format!("{battle}-voter"), "tie", too_fast)
                    .await
                    .counted()
            );
        }
        assert!(cast(&s, "ok", "w", "tie", OFF).await.counted());
        // A named battle's vote is excluded, but not from the anonymous leaderboard.
        answered(&s, "named", false).await;
        s.add_vote(&given(ExclusionRule::NamesShown, "named"))
            .await
            .unwrap();
        // A reason stored before the keys existed reads as "other".
        rows(
            &url,
            "UPDATE votes SET exclusion_rule = NULL WHERE battle_id = 'r2'",
        )
        .await;
        let counts = s.excluded_votes().await.unwrap();
        let want = |rule: &str, votes| ExcludedVotes {
            rule: rule.into(),
            votes,
        };
        assert_eq!(
            counts,
            [
                want("too_fast", 3),
                want("identity_leak", 2),
                want("other", 1)
            ]
        );
        assert_eq!(counts[0].label(), "too fast");
        assert_eq!(counts[2].label(), "other reasons");
    })
    .await;
}
on_both_backends!(
    excluded_anonymous_votes_are_counted_per_rule,
    counts_per_rule
);

async fn backfilled_keys(backend: &'static str) {
    // A database as it was before migration 0008, with votes excluded for the old reasons.
    let dir = tempfile::tempdir().unwrap();
    let url = arena_testkit::db::database_url(backend, dir.path()).await;
    let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../migrations")
        .join(backend);
    let mut old = sqlx::migrate::Migrator::new(folder).await.unwrap();
    old.migrations = old
        .migrations
        .iter()
        .filter(|m| m.version < 8)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    if backend == "postgres" {
        old.run(&sqlx::PgPool::connect(&url).await.unwrap())
            .await
            .unwrap();
    } else {
        let options = url
            .parse::<sqlx::sqlite::SqliteConnectOptions>()
            .unwrap()
            .create_if_missing(true);
        old.run(&sqlx::SqlitePool::connect_with(options).await.unwrap())
            .await
            .unwrap();
    }
    rows(&url, "INSERT INTO conversations (id, mode, model, client_hash, created_ms) VALUES ('c', 'battle', 'alpha', 'h', 1)").await;
    let reasons = [
        ("e", "FALSE", "'model B''s answer ended in an error'"),
        (
            "l",
            "FALSE",
            "'model A''s answer revealed a model identity (\"alpha\")'",
        ),
        (
            "n",
            "FALSE",
            "'the names were shown (side-by-side battle), so the vote does not rank models'",
        ),
        ("x", "FALSE", "'a reason from elsewhere'"),
        ("k", "TRUE", "NULL"),
    ];
    for (id, counted, reason) in reasons {
        rows(&url, &format!("INSERT INTO battles (id, model_a, model_b, anonymous, conversation_a, conversation_b, client_hash, created_ms) VALUES ('{id}', 'alpha', 'beta', TRUE, 'c', 'c', 'h', 1)")).await;
        rows(&url, &format!("INSERT INTO votes (id, battle_id, turn, winner, voter_hash, counted, excluded_reason, created_ms) VALUES ('{id}', '{id}', 1, 'tie', 'h', {counted}, {reason}, 1)")).await;
    }
    let s = arena_store::connect(&url)
        .await
        .expect("the migrations run on old votes");
    let keys = rows(&url, "SELECT id, exclusion_rule FROM votes ORDER BY id").await;
    let want: Vec<Vec<String>> = [
        ("e", "answer_error"),
        ("k", ""),
        ("l", "identity_leak"),
        ("n", "names_shown"),
        ("x", ""),
    ]
    .iter()
    .map(|(id, key)| vec![id.to_string(), key.to_string()])
    .collect();
    assert_eq!(keys, want);
    let counts: Vec<(String, i64)> = s
        .excluded_votes()
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.rule, c.votes))
        .collect();
    assert_eq!(counts.len(), 4, "{counts:?}");
    assert!(counts.contains(&("other".into(), 1)), "{counts:?}");
}
on_both_backends!(old_reasons_get_their_keys_in_the_migration, backfilled_keys);
