//! Answers in flight: leases, interrupted answers, and votes that need complete answers and
//! never interleave with a turn. Every test runs on SQLite and Postgres.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arena_store::{AnswerUpdate, ArenaStore, Finished, NewMessage, NewVote, OpenTurn, StoreError};
use arena_testkit::on_both_backends;

mod common;

async fn fresh(backend: &'static str, body: impl AsyncFnOnce(Arc<dyn ArenaStore>)) {
    common::with_fresh_store(backend, async |s, _| body(s).await).await;
}

fn now() -> i64 {
    arena_ratings::clock::unix_ms() as i64
}

async fn battle(s: &Arc<dyn ArenaStore>, id: &str) {
    s.create_battle(&common::battle(id, "alpha", "beta", true))
        .await
        .unwrap();
}

/// Turn `turn` on both sides of battle `id`: the user rows and answers being generated,
/// with a lease until `lease_ms`.
fn turn(id: &str, turn: i64, lease_ms: i64) -> OpenTurn {
    let seq = (turn - 1) * 2;
    let rows = ["a", "b"]
        .into_iter()
        .flat_map(|side| {
            let conversation_id = format!("{id}-{side}");
            [
                NewMessage {
                    conversation_id: conversation_id.clone(),
                    seq,
                    turn,
                    role: "user",
                    content: "Hi".into(),
                    ..Default::default()
                },
                NewMessage {
                    conversation_id,
                    seq: seq + 1,
                    turn,
                    role: "assistant",
                    finish_reason: Some("generating".into()),
                    lease_ms: Some(lease_ms),
                    ..Default::default()
                },
            ]
        })
        .collect();
    OpenTurn {
        battle_id: Some(id.into()),
        supersede: Vec::new(),
        rows,
    }
}

async fn finish(s: &Arc<dyn ArenaStore>, id: &str, side: &str, seq: i64, reason: &str) {
    s.update_answer(&AnswerUpdate {
        conversation_id: format!("{id}-{side}"),
        seq,
        content: format!("answer {side}"),
        finished: Some(Finished {
            finish_reason: reason.into(),
            ..Default::default()
        }),
        lease_ms: 0,
    })
    .await
    .unwrap();
}

static NEXT_VOTE: AtomicU64 = AtomicU64::new(0);

/// Saves the text so far of `conversation`'s first answer with a new lease.
async fn progress(s: &Arc<dyn ArenaStore>, conversation: &str, content: &str, lease_ms: i64) {
    s.update_answer(&AnswerUpdate {
        conversation_id: conversation.into(),
        seq: 1,
        content: content.into(),
        finished: None,
        lease_ms,
    })
    .await
    .unwrap();
}

fn vote(id: &str, turn: i64) -> NewVote {
    NewVote {
        id: format!("v-{id}-{}", NEXT_VOTE.fetch_add(1, Ordering::Relaxed)),
        battle_id: id.into(),
        turn,
        winner: "model_a".into(),
        voter_hash: "voter".into(),
        exclusion: None,
        limits: Default::default(),
        categories: Vec::new(),
    }
}

async fn answer_state(s: &Arc<dyn ArenaStore>, conversation: &str) -> (String, String) {
    let m = s.messages(conversation).await.unwrap();
    let last = m.last().unwrap();
    (last.finish_reason.clone().unwrap(), last.content.clone())
}

async fn votes_need_complete_answers(backend: &'static str) {
    fresh(backend, async |s| {
        battle(&s, "b1").await;
        s.open_turn(&turn("b1", 1, now() + 60_000)).await.unwrap();
        let refused = |e: StoreError| match e {
            StoreError::Unfinished(why) => why,
            other => panic!("expected Unfinished, got {other}"),
        };
        let why = refused(s.add_vote(&vote("b1", 1)).await.unwrap_err());
        assert_eq!(why, "answer A is still being generated");
        finish(&s, "b1", "a", 1, "stop").await;
        finish(&s, "b1", "b", 1, "interrupted").await;
        let why = refused(s.add_vote(&vote("b1", 1)).await.unwrap_err());
        assert_eq!(why, "answer B did not complete (interrupted)");
        // A regeneration supersedes B's partial answer; once it completes, the vote counts.
        s.open_turn(&OpenTurn {
            battle_id: Some("b1".into()),
            supersede: vec![("b1-b".into(), 1)],
            rows: vec![NewMessage {
                conversation_id: "b1-b".into(),
                seq: 2,
                turn: 1,
                role: "assistant",
                finish_reason: Some("generating".into()),
                lease_ms: Some(now() + 60_000),
                ..Default::default()
            }],
        })
        .await
        .unwrap();
        finish(&s, "b1", "b", 2, "length").await;
        let why = refused(s.add_vote(&vote("b1", 0)).await.unwrap_err());
        assert!(why.contains("not the battle's latest turn"), "{why}");
        s.add_vote(&vote("b1", 1)).await.unwrap();
        // Voted: no more turns, no second vote.
        let e = s.open_turn(&turn("b1", 2, now())).await.unwrap_err();
        assert!(matches!(e, StoreError::Closed), "{e}");
        let e = s.add_vote(&vote("b1", 1)).await.unwrap_err();
        assert!(matches!(e, StoreError::Conflict(_)), "{e}");
    })
    .await;
}
on_both_backends!(
    a_vote_needs_both_answers_complete_and_closes_the_battle,
    votes_need_complete_answers
);

async fn expired_leases(backend: &'static str) {
    fresh(backend, async |s| {
        battle(&s, "dead").await;
        battle(&s, "alive").await;
        s.open_turn(&turn("dead", 1, now() - 1)).await.unwrap();
        s.open_turn(&turn("alive", 1, now() + 60_000))
            .await
            .unwrap();
        // Progress is saved while the lease holds.
        progress(&s, "dead-a", "partial", now() - 1).await;
        let m = s.messages("alive-a").await.unwrap();
        assert!(m[1].in_flight(now()));
        assert!(!s.messages("dead-a").await.unwrap()[1].in_flight(now()));
        assert_eq!(s.close_expired_answers(now()).await.unwrap(), 2);
        let (finish, content) = answer_state(&s, "dead-a").await;
        assert_eq!(
            (finish.as_str(), content.as_str()),
            ("interrupted", "partial")
        );
        assert_eq!(answer_state(&s, "alive-b").await.0, "generating");
        // A progress tick after the answer was closed does not reopen it.
        progress(&s, "dead-a", "late", now() + 60_000).await;
        assert_eq!(answer_state(&s, "dead-a").await.0, "interrupted");
        assert_eq!(s.close_expired_answers(now()).await.unwrap(), 0);
    })
    .await;
}
on_both_backends!(
    answers_whose_lease_ran_out_are_closed_as_interrupted,
    expired_leases
);

async fn vote_turn_race(backend: &'static str) {
    fresh(backend, async |s| {
        // A vote and a new turn sent at once: exactly one of them wins, every time.
        for i in 0..12 {
            let id = format!("race{i}");
            battle(&s, &id).await;
            s.open_turn(&turn(&id, 1, now() + 60_000)).await.unwrap();
            finish(&s, &id, "a", 1, "stop").await;
            finish(&s, &id, "b", 1, "stop").await;
            let (v, t) = (vote(&id, 1), turn(&id, 2, now() + 60_000));
            let (voted, turned) = tokio::join!(s.add_vote(&v), s.open_turn(&t));
            assert!(
                voted.is_ok() != turned.is_ok(),
                "{id}: vote {voted:?}, turn {turned:?}"
            );
        }
    })
    .await;
}
on_both_backends!(
    a_vote_and_a_turn_on_one_battle_never_both_succeed,
    vote_turn_race
);
