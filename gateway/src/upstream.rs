//! Fault isolation of adapter calls: the pieces [`crate::routing::AdapterRoute::lookup`]
//! combines, each a small state machine tested on its own.
//!
//! - [`Breaker`]: per endpoint; opens after `breaker_failures` consecutive failures, refuses
//!   calls for `breaker_cooldown`, then lets exactly one probe through (half-open); the
//!   probe's success closes it, its failure opens it again.
//! - [`RetryBudget`]: per adapter token bucket; every call earns `retry_ratio` of a token, a
//!   floor of `retry_min_per_sec` tokens per second is always earned, a retry or hedge spends
//!   one. So extra attempts stay a bounded fraction of the load even when an adapter fails
//!   every call: retries cannot multiply an outage.
//! - [`LatencyWindow`]: per adapter, the last `latency_window` successful call latencies; the
//!   hedge delay is their p95 (never below `hedge_floor`; `hedge_default` until
//!   `hedge_min_samples` are known).
//! - [`Upstream`]: what all routes share: the `[upstream]` configuration and the health
//!   reporter, where `xgate.adapter.<department>` turns NOT_SERVING while every endpoint of one
//!   of the department's adapters has a breaker that is not closed.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::config::UpstreamConfig;

/// Locks `mutex`; a panic elsewhere while holding it leaves plain data that is still usable.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What a breaker reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    /// Cool-down passed (or a probe is out): the next call decides.
    HalfOpen,
    Open,
}

impl BreakerState {
    /// The `breaker_state` metric value.
    pub fn gauge(self) -> i64 {
        match self {
            BreakerState::Closed => 0,
            BreakerState::HalfOpen => 1,
            BreakerState::Open => 2,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { probing: bool },
}

/// Whether a call may go to an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Call,
    /// The one half-open probe: its outcome closes or reopens the breaker.
    Probe,
    Refused,
}

/// The circuit breaker of one endpoint.
#[derive(Debug)]
pub struct Breaker {
    failures_to_open: u32,
    cooldown: Duration,
    state: State,
}

impl Breaker {
    pub fn new(failures_to_open: u32, cooldown: Duration) -> Breaker {
        Breaker {
            failures_to_open: failures_to_open.max(1),
            cooldown,
            state: State::Closed { failures: 0 },
        }
    }

    pub fn state(&self, now: Instant) -> BreakerState {
        match self.state {
            State::Closed { .. } => BreakerState::Closed,
            State::Open { until } if now >= until => BreakerState::HalfOpen,
            State::Open { .. } => BreakerState::Open,
            State::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    /// Whether [`Self::admit`] would let a call through now (without taking the probe).
    pub fn would_admit(&self, now: Instant) -> bool {
        match self.state {
            State::Closed { .. } | State::HalfOpen { probing: false } => true,
            State::Open { until } => now >= until,
            State::HalfOpen { probing: true } => false,
        }
    }

    /// Lets a call through, or not; a cooled-down open breaker lets one probe through.
    pub fn admit(&mut self, now: Instant) -> Admission {
        match self.state {
            State::Closed { .. } => Admission::Call,
            State::Open { until } if now >= until => {
                self.state = State::HalfOpen { probing: true };
                Admission::Probe
            }
            State::HalfOpen { probing: false } => {
                self.state = State::HalfOpen { probing: true };
                Admission::Probe
            }
            State::Open { .. } | State::HalfOpen { probing: true } => Admission::Refused,
        }
    }

    /// The endpoint answered: closed, the failure count reset.
    pub fn on_success(&mut self) {
        self.state = State::Closed { failures: 0 };
    }

    /// The endpoint failed: counted; opens at the threshold, and at once when half-open.
    pub fn on_failure(&mut self, now: Instant) {
        self.state = match self.state {
            State::Closed { failures } if failures + 1 < self.failures_to_open => State::Closed {
                failures: failures + 1,
            },
            State::Closed { .. } | State::HalfOpen { .. } => State::Open {
                until: now + self.cooldown,
            },
            // A straggler of before the opening: the cool-down already runs.
            open @ State::Open { .. } => open,
        };
    }

    /// A call ended without an outcome (a hedge's loser, a cancelled fetch): if it was the
    /// probe, the next call may probe instead.
    pub fn on_abandoned(&mut self, probe: bool) {
        if probe && self.state == (State::HalfOpen { probing: true }) {
            self.state = State::HalfOpen { probing: false };
        }
    }
}

/// The token bucket bounding retries and hedges of one adapter.
#[derive(Debug)]
pub struct RetryBudget {
    ratio: f64,
    per_sec: f64,
    cap: f64,
    state: Mutex<(f64, Instant)>,
}

impl RetryBudget {
    /// Starts with one second's floor in the bucket; holds at most the floor plus what 100
    /// calls earn, so a quiet hour does not bank a burst of retries.
    pub fn new(ratio: f64, per_sec: f64, now: Instant) -> RetryBudget {
        let cap = per_sec + ratio * 100.0;
        RetryBudget {
            ratio,
            per_sec,
            cap,
            state: Mutex::new((per_sec.min(cap), now)),
        }
    }

    fn refill(&self, state: &mut (f64, Instant), now: Instant) {
        let elapsed = now.saturating_duration_since(state.1).as_secs_f64();
        state.0 = (state.0 + elapsed * self.per_sec).min(self.cap);
        state.1 = now.max(state.1);
    }

    /// A call was made: it earns `ratio` of a retry.
    pub fn deposit(&self, now: Instant) {
        let mut state = lock(&self.state);
        self.refill(&mut state, now);
        state.0 = (state.0 + self.ratio).min(self.cap);
    }

    /// Takes one retry's token, if there is one.
    pub fn try_withdraw(&self, now: Instant) -> bool {
        let mut state = lock(&self.state);
        self.refill(&mut state, now);
        // Tolerates the rounding of summed tenths (ten 0.1s add up to 0.999...).
        if state.0 >= 1.0 - 1e-9 {
            state.0 = (state.0 - 1.0).max(0.0);
            true
        } else {
            false
        }
    }
}

/// Recent successful call latencies of one adapter.
#[derive(Debug)]
pub struct LatencyWindow {
    samples: VecDeque<Duration>,
    capacity: usize,
}

impl LatencyWindow {
    pub fn new(capacity: usize) -> LatencyWindow {
        LatencyWindow {
            samples: VecDeque::with_capacity(capacity.max(1)),
            capacity: capacity.max(1),
        }
    }

    pub fn record(&mut self, latency: Duration) {
        if self.samples.len() == self.capacity {
            self.samples.pop_front();
        }
        self.samples.push_back(latency);
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// The 95th percentile (nearest rank) of the window.
    pub fn p95(&self) -> Option<Duration> {
        if self.samples.is_empty() {
            return None;
        }
        let mut sorted: Vec<Duration> = self.samples.iter().copied().collect();
        let rank = (sorted.len() * 95).div_ceil(100).max(1) - 1;
        let (_, p95, _) = sorted.select_nth_unstable(rank);
        Some(*p95)
    }

    /// How long to wait before hedging: the p95 once `min_samples` are known, else `default`;
    /// never below `floor`.
    pub fn hedge_delay(&self, min_samples: usize, default: Duration, floor: Duration) -> Duration {
        let delay = match self.p95() {
            Some(p95) if self.len() >= min_samples.max(1) => p95,
            _ => default,
        };
        delay.max(floor)
    }
}

/// What every adapter route shares.
pub struct Upstream {
    pub config: UpstreamConfig,
    health: OnceLock<HealthReporter>,
    /// department -> adapter id -> whether no endpoint of it is closed.
    down: Mutex<HashMap<String, HashMap<String, bool>>>,
}

impl Upstream {
    pub fn new(config: UpstreamConfig) -> Upstream {
        Upstream {
            config,
            health: OnceLock::new(),
            down: Mutex::new(HashMap::new()),
        }
    }

    /// Where adapter health is published from now on (set once, at start-up).
    pub fn set_health_reporter(&self, reporter: HealthReporter) {
        let _ = self.health.set(reporter);
    }

    /// The health service name of a department's adapters.
    pub fn health_service(department: &str) -> String {
        format!("xgate.adapter.{department}")
    }

    /// Records whether `adapter_id` of `department` has no closed endpoint, and publishes the
    /// department's health: NOT_SERVING while any of its adapters is down.
    pub async fn publish(&self, department: &str, adapter_id: &str, down: bool) {
        let department_down = {
            let mut map = lock(&self.down);
            let adapters = map.entry(department.to_owned()).or_default();
            adapters.insert(adapter_id.to_owned(), down);
            adapters.values().any(|d| *d)
        };
        self.set_health(department, department_down).await;
    }

    /// Forgets an adapter that is no longer routed.
    pub async fn forget(&self, department: &str, adapter_id: &str) {
        let remaining = {
            let mut map = lock(&self.down);
            match map.get_mut(department) {
                Some(adapters) => {
                    adapters.remove(adapter_id);
                    Some(adapters.values().any(|d| *d))
                }
                None => None,
            }
        };
        if let Some(down) = remaining {
            self.set_health(department, down).await;
        }
    }

    /// Sets the department's health service, once the reporter exists.
    async fn set_health(&self, department: &str, down: bool) {
        if let Some(reporter) = self.health.get() {
            let status = if down {
                ServingStatus::NotServing
            } else {
                ServingStatus::Serving
            };
            reporter
                .set_service_status(Self::health_service(department), status)
                .await;
        }
    }
}

/// Why an adapter call produced no answer. The text is shown to the
/// requester in each record's error, so it names the department, never the
/// subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// The deadline (the fetch's, capped per call) passed.
    Timeout(Duration),
    /// The adapter answered with a gRPC error or could not be reached.
    Unavailable(String),
    /// The adapter has no endpoint.
    NoEndpoint,
    /// Every endpoint's circuit breaker is open: not called.
    CircuitOpen,
    /// The adapter's bulkhead is full (this many calls in flight): not called.
    Busy(usize),
}

impl CallError {
    pub(crate) fn outcome(&self) -> &'static str {
        match self {
            CallError::Timeout(_) => "timeout",
            CallError::Unavailable(_) | CallError::NoEndpoint => "error",
            CallError::CircuitOpen => "breaker_open",
            CallError::Busy(_) => "bulkhead_full",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COOL: Duration = Duration::from_secs(5);

    #[test]
    fn breaker_opens_after_consecutive_failures_only() {
        let t = Instant::now();
        let mut b = Breaker::new(3, COOL);
        b.on_failure(t);
        b.on_failure(t);
        b.on_success();
        b.on_failure(t);
        b.on_failure(t);
        assert_eq!(
            b.state(t),
            BreakerState::Closed,
            "a success resets the count"
        );
        assert_eq!(b.admit(t), Admission::Call);
        b.on_failure(t);
        assert_eq!(b.state(t), BreakerState::Open);
        assert_eq!(b.admit(t), Admission::Refused);
        assert!(!b.would_admit(t + COOL / 2));
        assert_eq!(b.admit(t + COOL / 2), Admission::Refused);
    }

    #[test]
    fn half_open_lets_one_probe_through_which_decides() {
        let t = Instant::now();
        let mut b = Breaker::new(1, COOL);
        b.on_failure(t);
        let later = t + COOL;
        assert_eq!(b.state(later), BreakerState::HalfOpen);
        assert!(b.would_admit(later));
        assert_eq!(b.admit(later), Admission::Probe);
        assert_eq!(b.admit(later), Admission::Refused, "one probe at a time");
        // The probe fails: open again for a full cool-down.
        b.on_failure(later);
        assert_eq!(b.state(later + COOL / 2), BreakerState::Open);
        assert_eq!(b.admit(later + COOL / 2), Admission::Refused);
        let again = later + COOL;
        assert_eq!(b.admit(again), Admission::Probe);
        b.on_success();
        assert_eq!(b.state(again), BreakerState::Closed);
        assert_eq!(b.admit(again), Admission::Call);
    }

    #[test]
    fn an_abandoned_probe_frees_the_probe_slot() {
        let t = Instant::now();
        let mut b = Breaker::new(1, COOL);
        b.on_failure(t);
        assert_eq!(b.admit(t + COOL), Admission::Probe);
        b.on_abandoned(false);
        assert_eq!(b.admit(t + COOL), Admission::Refused, "not the probe");
        b.on_abandoned(true);
        assert_eq!(b.admit(t + COOL), Admission::Probe);
    }

    #[test]
    fn retry_budget_is_a_ratio_of_calls_plus_a_floor() {
        let t = Instant::now();
        // 10% of calls, no floor: 10 calls earn one retry.
        let budget = RetryBudget::new(0.1, 0.0, t);
        assert!(!budget.try_withdraw(t), "nothing earned yet");
        for _ in 0..9 {
            budget.deposit(t);
        }
        assert!(!budget.try_withdraw(t), "0.9 of a token");
        budget.deposit(t);
        assert!(budget.try_withdraw(t));
        assert!(!budget.try_withdraw(t), "spent");
        // The cap: 1000 calls bank no more than 10 retries.
        for _ in 0..1000 {
            budget.deposit(t);
        }
        let granted = (0..100).filter(|_| budget.try_withdraw(t)).count();
        assert_eq!(granted, 10);

        // A floor of 2 per second, no ratio: 2 at start, 2 more a second later.
        let floor = RetryBudget::new(0.0, 2.0, t);
        assert_eq!((0..10).filter(|_| floor.try_withdraw(t)).count(), 2);
        let half = t + Duration::from_millis(500);
        assert_eq!((0..10).filter(|_| floor.try_withdraw(half)).count(), 1);
        let later = t + Duration::from_secs(10);
        assert_eq!((0..10).filter(|_| floor.try_withdraw(later)).count(), 2);

        let none = RetryBudget::new(0.0, 0.0, t);
        for _ in 0..100 {
            none.deposit(t);
        }
        assert!(!none.try_withdraw(t + Duration::from_secs(60)));
    }

    #[test]
    fn p95_window_is_bounded_and_hedge_delay_follows_it() {
        let ms = Duration::from_millis;
        let mut w = LatencyWindow::new(100);
        assert_eq!(w.p95(), None);
        assert_eq!(
            w.hedge_delay(20, ms(100), ms(2)),
            ms(100),
            "no samples: default"
        );
        for i in 1..=100 {
            w.record(ms(i));
        }
        assert_eq!(w.p95(), Some(ms(95)));
        assert_eq!(w.hedge_delay(20, ms(100), ms(2)), ms(95));
        // 100 more fast samples push every slow one out.
        for _ in 0..100 {
            w.record(Duration::from_micros(300));
        }
        assert_eq!(w.len(), 100);
        assert_eq!(w.p95(), Some(Duration::from_micros(300)));
        assert_eq!(w.hedge_delay(20, ms(100), ms(2)), ms(2), "the floor");
        let mut few = LatencyWindow::new(100);
        for _ in 0..5 {
            few.record(ms(1));
        }
        assert_eq!(
            few.hedge_delay(20, ms(50), ms(2)),
            ms(50),
            "too few samples"
        );
    }
}
