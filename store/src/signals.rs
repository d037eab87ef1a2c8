//! Votes you can trust: the signals stored with each vote (how soon after the answers it
//! came, how many votes its client cast in the last hour, how long its client has been
//! picking the same side), the rules that keep a vote off the leaderboard, and the decision.
//! The signals come from the server's clock and the store only, never from the request.

use crate::vote::VoteRow;

/// The trailing window of [`VoteSignals::client_votes_hour`], in milliseconds.
pub const HOUR_MS: i64 = 3_600_000;

/// Why a vote does not count, as the stable key stored in `votes.exclusion_rule`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExclusionRule {
    /// An answer ended in an error.
    AnswerError,
    /// An answer revealed a model's identity.
    IdentityLeak,
    /// The voter saw the names (a named, side-by-side battle).
    NamesShown,
    /// The vote came sooner after the answers finished than anyone can read them.
    TooFast,
    /// The client cast more votes in the last hour than a person does.
    TooManyVotes,
    /// The client picked the same side more times in a row than chance makes likely.
    SameSideStreak,
}

impl ExclusionRule {
    /// Every rule, in the order the page lists them.
    pub const ALL: [ExclusionRule; 6] = [
        Self::AnswerError,
        Self::IdentityLeak,
        Self::NamesShown,
        Self::TooFast,
        Self::TooManyVotes,
        Self::SameSideStreak,
    ];

    /// Its key in the database and the APIs.
    pub fn key(self) -> &'static str {
        match self {
            Self::AnswerError => "answer_error",
            Self::IdentityLeak => "identity_leak",
            Self::NamesShown => "names_shown",
            Self::TooFast => "too_fast",
            Self::TooManyVotes => "too_many_votes",
            Self::SameSideStreak => "same_side_streak",
        }
    }

    /// The rule whose key is `key`.
    pub fn from_key(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.key() == key)
    }

    /// A few words for people (the page, `arena leaderboard`).
    pub fn label(self) -> &'static str {
        match self {
            Self::AnswerError => "answer error",
            Self::IdentityLeak => "identity leak",
            Self::NamesShown => "names shown",
            Self::TooFast => "too fast",
            Self::TooManyVotes => "too many votes",
            Self::SameSideStreak => "same-side streak",
        }
    }
}

/// The thresholds of the client rules; 0 turns a rule off. The default turns every rule off
/// (the controller's defaults are its flags').
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VoteLimits {
    /// A vote sooner than this (ms) after the later answer finished does not count.
    pub min_vote_delay_ms: u64,
    /// A client's votes beyond this many in the trailing hour do not count.
    pub max_votes_per_hour: u64,
    /// A client's votes beyond this many in a row for the same side do not count.
    pub max_same_side_streak: u64,
}

/// What the store measured about a vote, inside its transaction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VoteSignals {
    /// Milliseconds from the later of the two judged answers' ends to the vote; None when an
    /// answer's end was not recorded (it ended before the arena recorded ends).
    pub answer_to_vote_ms: Option<i64>,
    /// The voter's votes in the trailing hour, this one included.
    pub client_votes_hour: i64,
    /// The voter's latest consecutive votes for this side, this one included; 0 for a tie.
    pub same_side_streak: i64,
}

/// A rule broken and what to tell the voter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exclusion {
    /// The rule.
    pub rule: ExclusionRule,
    /// A sentence a person understands.
    pub reason: String,
}

/// What became of a stored vote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoteOutcome {
    /// What the store measured.
    pub signals: VoteSignals,
    /// Why it does not count; None when it counts.
    pub exclusion: Option<Exclusion>,
}

impl VoteOutcome {
    /// Whether it counts for the leaderboard.
    pub fn counted(&self) -> bool {
        self.exclusion.is_none()
    }
}

/// Excluded anonymous votes of one rule.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ExcludedVotes {
    /// The rule's key; `other` for votes stored without one (reasons older than the keys).
    pub rule: String,
    /// How many.
    pub votes: i64,
}

impl ExcludedVotes {
    /// A few words for people.
    pub fn label(&self) -> &str {
        ExclusionRule::from_key(&self.rule).map_or("other reasons", ExclusionRule::label)
    }
}

/// Milliseconds as seconds without trailing zeros: 400 is "0.4 s", 2000 "2 s".
fn seconds(ms: i64) -> String {
    let whole = format!("{}.{:03}", ms / 1000, (ms % 1000).abs());
    format!("{} s", whole.trim_end_matches('0').trim_end_matches('.'))
}

/// The first client rule `signals` break under `limits`, with its reason; None when the
/// vote passes them all. The delay comes first: it speaks of this vote, the others of its
/// client.
pub fn judge(signals: &VoteSignals, winner: &str, limits: &VoteLimits) -> Option<Exclusion> {
    let over = |value: i64, limit: u64| limit > 0 && value > 0 && value as u64 > limit;
    let under = |value: i64, limit: u64| limit > 0 && (value.max(0) as u64) < limit;
    if let Some(delay) = signals.answer_to_vote_ms {
        if under(delay, limits.min_vote_delay_ms) {
            return Some(Exclusion {
                rule: ExclusionRule::TooFast,
                reason: format!(
                    "voted {} after the answers finished (the minimum is {}), too soon to have read them",
                    seconds(delay.max(0)),
                    seconds(limits.min_vote_delay_ms as i64)
                ),
            });
        }
    }
    if over(signals.client_votes_hour, limits.max_votes_per_hour) {
        return Some(Exclusion {
            rule: ExclusionRule::TooManyVotes,
            reason: format!(
                "{} votes from this client in the last hour (at most {} count)",
                signals.client_votes_hour, limits.max_votes_per_hour
            ),
        });
    }
    if over(signals.same_side_streak, limits.max_same_side_streak) {
        let side = if winner == "model_b" { "B" } else { "A" };
        return Some(Exclusion {
            rule: ExclusionRule::SameSideStreak,
            reason: format!(
                "{} votes in a row for model {side} from this client (at most {} in a row count)",
                signals.same_side_streak, limits.max_same_side_streak
            ),
        });
    }
    None
}

/// The voter's streak after a vote for `winner`, from its previous vote's winner and streak:
/// a tie is no side and breaks it.
pub fn next_streak(previous: Option<(&str, i64)>, winner: &str) -> i64 {
    if !matches!(winner, "model_a" | "model_b") {
        return 0;
    }
    match previous {
        Some((last, streak)) if last == winner => streak.max(0) + 1,
        _ => 1,
    }
}

/// When the later of the two current answers to `turn` ended; None when either end is
/// unknown.
pub(crate) fn answers_finished_ms(
    turn: i64,
    conversations: [&str; 2],
    rows: &[VoteRow],
) -> Option<i64> {
    conversations
        .into_iter()
        .map(|conversation| {
            rows.iter()
                .rfind(|r| {
                    r.conversation_id == conversation
                        && r.role == "assistant"
                        && !r.superseded
                        && r.turn == turn
                })
                .and_then(|r| r.finished_ms)
        })
        .try_fold(i64::MIN, |latest, end| end.map(|e| latest.max(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: VoteLimits = VoteLimits {
        min_vote_delay_ms: 1000,
        max_votes_per_hour: 60,
        max_same_side_streak: 10,
    };

    fn signals(delay: Option<i64>, hour: i64, streak: i64) -> VoteSignals {
        VoteSignals {
            answer_to_vote_ms: delay,
            client_votes_hour: hour,
            same_side_streak: streak,
        }
    }

    #[test]
    fn a_vote_within_every_limit_counts() {
        assert_eq!(
            judge(&signals(Some(1000), 60, 10), "model_a", &LIMITS),
            None
        );
        // An unknown delay is not judged.
        assert_eq!(judge(&signals(None, 1, 1), "model_a", &LIMITS), None);
    }

    #[test]
    fn too_fast_says_how_fast_and_the_minimum() {
        let e = judge(&signals(Some(400), 1, 1), "tie", &LIMITS).unwrap();
        assert_eq!(e.rule, ExclusionRule::TooFast);
        assert_eq!(
            e.reason,
            "voted 0.4 s after the answers finished (the minimum is 1 s), too soon to have read them"
        );
        // A clock behind another replica's reads as no delay at all.
        let e = judge(&signals(Some(-30), 1, 1), "tie", &LIMITS).unwrap();
        assert!(e.reason.starts_with("voted 0 s after"), "{}", e.reason);
        let e = judge(
            &signals(Some(1499), 1, 1),
            "tie",
            &VoteLimits {
                min_vote_delay_ms: 1500,
                ..LIMITS
            },
        )
        .unwrap();
        assert!(e.reason.contains("voted 1.499 s after"), "{}", e.reason);
        assert!(e.reason.contains("the minimum is 1.5 s"), "{}", e.reason);
    }

    #[test]
    fn too_many_votes_in_the_hour() {
        let e = judge(&signals(Some(5000), 61, 1), "model_b", &LIMITS).unwrap();
        assert_eq!(e.rule, ExclusionRule::TooManyVotes);
        assert_eq!(
            e.reason,
            "61 votes from this client in the last hour (at most 60 count)"
        );
    }

    #[test]
    fn a_long_streak_names_the_side() {
        let e = judge(&signals(Some(5000), 11, 11), "model_b", &LIMITS).unwrap();
        assert_eq!(e.rule, ExclusionRule::SameSideStreak);
        assert_eq!(
            e.reason,
            "11 votes in a row for model B from this client (at most 10 in a row count)"
        );
        let e = judge(&signals(Some(5000), 11, 11), "model_a", &LIMITS).unwrap();
        assert!(e.reason.contains("for model A"), "{}", e.reason);
    }

    #[test]
    fn the_delay_rule_comes_first_and_zero_turns_a_rule_off() {
        let all = signals(Some(10), 500, 500);
        assert_eq!(
            judge(&all, "model_a", &LIMITS).unwrap().rule,
            ExclusionRule::TooFast
        );
        let no_delay = VoteLimits {
            min_vote_delay_ms: 0,
            ..LIMITS
        };
        assert_eq!(
            judge(&all, "model_a", &no_delay).unwrap().rule,
            ExclusionRule::TooManyVotes
        );
        let streak_only = VoteLimits {
            max_votes_per_hour: 0,
            ..no_delay
        };
        assert_eq!(
            judge(&all, "model_a", &streak_only).unwrap().rule,
            ExclusionRule::SameSideStreak
        );
        assert_eq!(judge(&all, "model_a", &VoteLimits::default()), None);
    }

    #[test]
    fn ties_break_streaks_and_the_other_side_restarts_one() {
        assert_eq!(next_streak(None, "model_a"), 1);
        assert_eq!(next_streak(Some(("model_a", 4)), "model_a"), 5);
        assert_eq!(next_streak(Some(("model_a", 4)), "model_b"), 1);
        assert_eq!(next_streak(Some(("model_a", 4)), "tie"), 0);
        assert_eq!(next_streak(Some(("model_a", 4)), "tie (bothbad)"), 0);
        assert_eq!(next_streak(Some(("tie", 0)), "model_a"), 1);
        // The state row a voter starts with.
        assert_eq!(next_streak(Some(("", 0)), "model_b"), 1);
    }

    #[test]
    fn keys_round_trip_and_unknown_ones_read_as_other() {
        for rule in ExclusionRule::ALL {
            assert_eq!(ExclusionRule::from_key(rule.key()), Some(rule));
        }
        assert_eq!(ExclusionRule::from_key("nope"), None);
        let other = ExcludedVotes {
            rule: "other".into(),
            votes: 1,
        };
        assert_eq!(other.label(), "other reasons");
    }

    fn answer(conversation: &str, turn: i64, finished_ms: Option<i64>) -> VoteRow {
        VoteRow {
            conversation_id: conversation.into(),
            turn,
            role: "assistant".into(),
            content: String::new(),
            completion_tokens: None,
            prompt_tokens: None,
            finish_reason: Some("stop".into()),
            superseded: false,
            finished_ms,
        }
    }

    #[test]
    fn the_later_current_answer_of_the_turn_sets_the_clock() {
        let mut old = answer("b", 2, Some(9_000));
        old.superseded = true;
        let rows = vec![
            answer("a", 1, Some(50_000)),
            answer("a", 2, Some(1_000)),
            old,
            answer("b", 2, Some(2_000)),
        ];
        assert_eq!(answers_finished_ms(2, ["a", "b"], &rows), Some(2_000));
        let unknown = vec![answer("a", 1, Some(1_000)), answer("b", 1, None)];
        assert_eq!(answers_finished_ms(1, ["a", "b"], &unknown), None);
        assert_eq!(answers_finished_ms(3, ["a", "b"], &rows), None);
    }
}
