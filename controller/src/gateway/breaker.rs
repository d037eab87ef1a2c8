//! A circuit breaker per worker. A worker that accepts connections but never answers keeps
//! heartbeating, so the registry alone would keep sending it requests that each wait out the
//! first-token timeout. After a few consecutive failures the breaker opens: dispatch skips the
//! worker for a cool-down (doubling each time it opens again, up to a ceiling), then lets one
//! trial request through (half-open); a success closes it, a failure opens it again.
//!
//! Time is passed in, never read here, so the tests drive it without sleeping.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::BreakerSettings;

/// Where a breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Circuit {
    /// Requests flow.
    Closed,
    /// The worker is skipped until the cool-down ends.
    Open,
    /// The cool-down is over: one trial request decides.
    HalfOpen,
}

/// The breaker of one worker.
#[derive(Debug, Clone)]
pub struct Breaker {
    settings: BreakerSettings,
    /// Failures since the last success (while closed).
    failures: u32,
    /// Times it opened since the last success: the cool-down doubles with each.
    opened: u32,
    /// Set while open or half-open: when the cool-down ends.
    open_until: Option<Instant>,
    /// Half-open: the trial request sent, and when it counts as lost (its verdict may never
    /// come when the caller drops the stream) so that another may go.
    trial_until: Option<Instant>,
}

impl Breaker {
    /// A closed breaker.
    pub fn new(settings: BreakerSettings) -> Self {
        Self {
            settings,
            failures: 0,
            opened: 0,
            open_until: None,
            trial_until: None,
        }
    }

    /// Its state at `now`.
    pub fn circuit(&self, now: Instant) -> Circuit {
        match self.open_until {
            None => Circuit::Closed,
            Some(until) if now < until => Circuit::Open,
            Some(_) => Circuit::HalfOpen,
        }
    }

    /// Consecutive failures counted toward opening it.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Whether dispatch may send the worker a request at `now`.
    pub fn admits(&self, now: Instant) -> bool {
        match self.circuit(now) {
            Circuit::Closed => true,
            Circuit::Open => false,
            Circuit::HalfOpen => self.trial_until.is_none_or(|t| now >= t),
        }
    }

    /// Takes a request for the worker at `now` if it [`admits`](Self::admits) one; when
    /// half-open, that request is the trial and no other goes until its verdict (or until
    /// the trial counts as lost).
    pub fn try_dispatch(&mut self, now: Instant) -> bool {
        if !self.admits(now) {
            return false;
        }
        if self.circuit(now) == Circuit::HalfOpen {
            self.trial_until = Some(now + self.cool_down());
        }
        true
    }

    /// The worker answered well: the breaker closes.
    pub fn on_success(&mut self) {
        *self = Self::new(self.settings);
    }

    /// The worker failed or timed out at `now`; true when this opened the breaker.
    pub fn on_failure(&mut self, now: Instant) -> bool {
        if self.settings.failures == 0 {
            return false;
        }
        match self.circuit(now) {
            // A call sent before it opened: it is open already.
            Circuit::Open => false,
            Circuit::HalfOpen => {
                self.open(now);
                true
            }
            Circuit::Closed => {
                self.failures += 1;
                if self.failures >= self.settings.failures {
                    self.open(now);
                    true
                } else {
                    false
                }
            }
        }
    }

    fn open(&mut self, now: Instant) {
        self.opened = self.opened.saturating_add(1);
        self.failures = 0;
        self.trial_until = None;
        self.open_until = Some(now + self.cool_down());
    }

    /// The cool-down of the current opening: doubled per opening since the last success.
    fn cool_down(&self) -> Duration {
        let doublings = self.opened.saturating_sub(1).min(16);
        self.settings
            .cool_down
            .saturating_mul(1 << doublings)
            .min(self.settings.max_cool_down.max(self.settings.cool_down))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn breaker() -> Breaker {
        Breaker::new(BreakerSettings {
            failures: 3,
            cool_down: Duration::from_secs(10),
            max_cool_down: Duration::from_secs(60),
        })
    }

    #[test]
    fn opens_after_consecutive_failures_only() {
        let t0 = Instant::now();
        let mut b = breaker();
        assert!(!b.on_failure(t0));
        assert!(!b.on_failure(t0));
        b.on_success();
        assert_eq!(b.failures(), 0, "a success resets the count");
        assert!(!b.on_failure(t0));
        assert!(!b.on_failure(t0));
        assert!(b.admits(t0));
        assert!(b.on_failure(t0), "the third failure in a row opens it");
        assert_eq!(b.circuit(t0), Circuit::Open);
        assert!(!b.admits(t0 + 9 * S));
        assert!(!b.try_dispatch(t0 + 9 * S));
        // A late failure of a call sent before it opened changes nothing.
        assert!(!b.on_failure(t0 + 5 * S));
        assert_eq!(b.circuit(t0 + 10 * S), Circuit::HalfOpen);
    }

    #[test]
    fn half_open_lets_one_trial_through_and_its_verdict_decides() {
        let t0 = Instant::now();
        let mut b = breaker();
        for _ in 0..3 {
            b.on_failure(t0);
        }
        let t1 = t0 + 10 * S;
        assert!(b.try_dispatch(t1), "the trial");
        assert!(!b.admits(t1), "only one trial at a time");
        assert!(!b.try_dispatch(t1 + S));
        b.on_success();
        assert_eq!(b.circuit(t1 + S), Circuit::Closed);
        assert!(b.admits(t1 + S));
        assert!(b.try_dispatch(t1 + S));
        assert!(b.try_dispatch(t1 + S), "closed: no limit on requests");
    }

    #[test]
    fn a_failed_trial_reopens_with_a_doubled_cool_down_up_to_the_ceiling() {
        let t0 = Instant::now();
        let mut b = breaker();
        for _ in 0..3 {
            b.on_failure(t0);
        }
        // Cool-downs: 10 s, then 20, 40, 60 (the ceiling), 60.
        let mut now = t0;
        for cool_down in [10, 20, 40, 60, 60] {
            let end = now + cool_down * S;
            assert!(!b.admits(end - S), "open for {cool_down} s");
            assert!(b.try_dispatch(end));
            assert!(b.on_failure(end + S), "a failed trial opens it again");
            now = end + S;
        }
        b.on_success();
        for _ in 0..3 {
            b.on_failure(now);
        }
        assert!(
            b.admits(now + 10 * S),
            "after a success it starts at 10 s again"
        );
    }

    #[test]
    fn a_lost_trial_lets_another_go_after_the_cool_down() {
        let t0 = Instant::now();
        let mut b = breaker();
        for _ in 0..3 {
            b.on_failure(t0);
        }
        let t1 = t0 + 10 * S;
        assert!(b.try_dispatch(t1));
        // Its caller went away without a verdict.
        assert!(!b.admits(t1 + 9 * S));
        assert!(b.try_dispatch(t1 + 10 * S));
    }

    #[test]
    fn zero_failures_means_it_never_opens() {
        let t0 = Instant::now();
        let mut b = Breaker::new(BreakerSettings {
            failures: 0,
            ..breaker().settings
        });
        for _ in 0..100 {
            assert!(!b.on_failure(t0));
        }
        assert!(b.admits(t0));
    }
}
