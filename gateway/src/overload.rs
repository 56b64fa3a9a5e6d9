//! Overload protection for `Fetch` and `FetchStream` (the only RPCs that
//! fan out to adapters): a gateway-wide limit on fetches in progress with
//! load shedding, and per-requester token-bucket rate limits.
//!
//! Both refuse with RESOURCE_EXHAUSTED before any work is done — shedding
//! happens before authentication and validation, the rate check right
//! after the requester's identity is known — so a refused call costs a
//! semaphore `try_acquire` (or one bucket update) and a cloned status.
//! Health, Registry, PolicyAdmin and Audit calls are never limited here.
//! Sheds are counted in `xgate_shed_total{reason}` and logged as one
//! summary warning at most every [`SHED_LOG_EVERY`], never per call.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::Stream;
use prometheus_client::metrics::counter::Counter;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt as _};

use crate::config::{Limits, RateLimit};
use crate::metrics::{ShedLabels, metrics};

/// The retry delay suggested to a shed caller: long enough for fetches in
/// progress (typically a few ms to a few hundred) to free slots.
pub const OVERLOADED_RETRY: Duration = Duration::from_millis(100);

/// At most one shed summary warning per this interval.
pub const SHED_LOG_EVERY: Duration = Duration::from_secs(5);

const OVERLOADED: &str = "overloaded";
const RATE_LIMITED: &str = "rate_limited";

/// The admission state of one gateway.
pub struct Overload {
    slots: Arc<Semaphore>,
    /// Built once: shedding only clones it.
    overloaded: Status,
    rates: RateLimiter,
    log: ShedLog,
    /// The `shed{reason}` counters, looked up once (a family lookup takes
    /// a lock and hashes the labels).
    shed_overloaded: Counter,
    shed_rate_limited: Counter,
}

/// A fetch's place among those in progress; released when dropped.
pub struct Slot {
    _permit: OwnedSemaphorePermit,
}

impl Drop for Slot {
    fn drop(&mut self) {
        metrics().in_flight.dec();
    }
}

impl Overload {
    pub fn new(limits: &Limits) -> Overload {
        let mut details = ErrorDetails::with_retry_info(Some(OVERLOADED_RETRY));
        details.set_error_info(
            "OVERLOADED",
            "xgate",
            [("max_in_flight".to_owned(), limits.max_in_flight.to_string())],
        );
        Overload {
            slots: Arc::new(Semaphore::new(limits.max_in_flight.get())),
            overloaded: Status::with_error_details(
                Code::ResourceExhausted,
                format!(
                    "the gateway is at its limit of {} fetches in progress; retry in {} ms",
                    limits.max_in_flight,
                    OVERLOADED_RETRY.as_millis()
                ),
                details,
            ),
            rates: RateLimiter::new(limits),
            log: ShedLog::new(),
            shed_overloaded: shed_counter(OVERLOADED),
            shed_rate_limited: shed_counter(RATE_LIMITED),
        }
    }

    /// Takes a slot, or refuses at once when all are taken.
    pub fn admit(&self) -> Result<Slot, Status> {
        match Arc::clone(&self.slots).try_acquire_owned() {
            Ok(permit) => {
                metrics().in_flight.inc();
                Ok(Slot { _permit: permit })
            }
            Err(_) => {
                self.shed(OVERLOADED);
                Err(self.overloaded.clone())
            }
        }
    }

    /// Spends one of `requester`'s tokens, or refuses with the time until
    /// the next one.
    pub fn check_rate(&self, requester: &str) -> Result<(), Status> {
        match self.rates.take(requester, Instant::now()) {
            Ok(()) => Ok(()),
            Err((limit, wait)) => {
                self.shed(RATE_LIMITED);
                Err(rate_limited(requester, limit, wait))
            }
        }
    }

    fn shed(&self, reason: &'static str) {
        if reason == OVERLOADED {
            self.shed_overloaded.inc();
        } else {
            self.shed_rate_limited.inc();
        }
        self.log.shed(reason);
    }
}

fn shed_counter(reason: &'static str) -> Counter {
    metrics().shed.get_or_create(&ShedLabels { reason }).clone()
}

fn rate_limited(requester: &str, limit: RateLimit, wait: Duration) -> Status {
    let description = format!(
        "at most {} fetches per second (burst {}) for requester `{requester}`",
        limit.rate, limit.burst
    );
    let mut details = ErrorDetails::with_retry_info(Some(wait));
    details.add_quota_failure_violation(format!("requester:{requester}"), description.clone());
    Status::with_error_details(
        Code::ResourceExhausted,
        format!(
            "rate limit exceeded: {description}; retry in {} ms",
            wait.as_millis().max(1)
        ),
        details,
    )
}

/// A token bucket: refills `rate` tokens per second up to `burst`.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    limit: RateLimit,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(limit: RateLimit, now: Instant) -> TokenBucket {
        TokenBucket {
            limit,
            tokens: f64::from(limit.burst.get()),
            last: now,
        }
    }

    /// Takes one token, or says how long until one is available.
    pub fn take(&mut self, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.tokens =
            (self.tokens + elapsed * self.limit.rate).min(f64::from(self.limit.burst.get()));
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - self.tokens) / self.limit.rate,
            ))
        }
    }
}

/// One bucket per requester identity (a bounded set: those the CA issued
/// certificates to), with the configured default or the requester's own
/// limit.
pub struct RateLimiter {
    default: Option<RateLimit>,
    overrides: HashMap<String, RateLimit>,
    buckets: Mutex<HashMap<String, TokenBucket>>,
}

impl RateLimiter {
    pub fn new(limits: &Limits) -> RateLimiter {
        RateLimiter {
            default: limits.default_rate_limit(),
            overrides: limits.requester_limits.clone(),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn limit_of(&self, requester: &str) -> Option<RateLimit> {
        self.overrides.get(requester).copied().or(self.default)
    }

    /// Takes a token of `requester`'s bucket; on refusal returns its limit
    /// and the wait until the next token.
    pub fn take(&self, requester: &str, now: Instant) -> Result<(), (RateLimit, Duration)> {
        let Some(limit) = self.limit_of(requester) else {
            return Ok(());
        };
        let mut buckets = match self.buckets.lock() {
            Ok(guard) => guard,
            // A bucket is updated in one step; a panic cannot leave it torn.
            Err(poisoned) => poisoned.into_inner(),
        };
        let result = match buckets.get_mut(requester) {
            Some(bucket) => bucket.take(now),
            None => {
                let mut bucket = TokenBucket::new(limit, now);
                let result = bucket.take(now);
                buckets.insert(requester.to_owned(), bucket);
                result
            }
        };
        result.map_err(|wait| (limit, wait))
    }
}

/// Counts sheds and emits one warning per [`SHED_LOG_EVERY`] at most.
struct ShedLog {
    epoch: Instant,
    /// Milliseconds since `epoch` after which the next warning may go out.
    next_ms: AtomicU64,
    overloaded: AtomicU64,
    rate_limited: AtomicU64,
}

impl ShedLog {
    fn new() -> ShedLog {
        ShedLog {
            epoch: Instant::now(),
            next_ms: AtomicU64::new(0),
            overloaded: AtomicU64::new(0),
            rate_limited: AtomicU64::new(0),
        }
    }

    fn shed(&self, reason: &'static str) {
        let counter = if reason == OVERLOADED {
            &self.overloaded
        } else {
            &self.rate_limited
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let now = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        let next = self.next_ms.load(Ordering::Relaxed);
        let every = u64::try_from(SHED_LOG_EVERY.as_millis()).unwrap_or(u64::MAX);
        if now >= next
            && self
                .next_ms
                .compare_exchange(
                    next,
                    now.saturating_add(every),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            tracing::warn!(
                overloaded = self.overloaded.swap(0, Ordering::Relaxed),
                rate_limited = self.rate_limited.swap(0, Ordering::Relaxed),
                "shedding fetches (counts since the last such warning)"
            );
        }
    }
}

/// A response stream that keeps its fetch's [`Slot`] until it ends or is
/// dropped, and runs every poll inside the fetch's span (a stream is polled
/// by the server after the handler returned, outside the handler's span).
pub struct HeldStream<S> {
    inner: Pin<Box<S>>,
    span: tracing::Span,
    slot: Option<Slot>,
    /// Called once when the stream ends.
    on_end: Option<Box<dyn FnOnce() + Send>>,
}

impl<S> HeldStream<S> {
    pub fn new(
        inner: S,
        span: tracing::Span,
        slot: Slot,
        on_end: impl FnOnce() + Send + 'static,
    ) -> HeldStream<S> {
        HeldStream {
            inner: Box::pin(inner),
            span,
            slot: Some(slot),
            on_end: Some(Box::new(on_end)),
        }
    }
}

impl<S: Stream> Stream for HeldStream<S> {
    type Item = S::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        let this = &mut *self;
        let _entered = this.span.enter();
        let next = this.inner.as_mut().poll_next(cx);
        if let Poll::Ready(None) = next {
            this.slot = None;
            if let Some(on_end) = this.on_end.take() {
                on_end();
            }
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nz(n: u32) -> std::num::NonZeroU32 {
        std::num::NonZeroU32::new(n).expect("non-zero")
    }

    fn limits(max_in_flight: usize) -> Limits {
        Limits {
            max_in_flight: std::num::NonZeroUsize::new(max_in_flight).expect("non-zero"),
            ..Limits::default()
        }
    }

    #[test]
    fn a_bucket_spends_its_burst_then_refills_at_its_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(
            RateLimit {
                rate: 10.0,
                burst: nz(3),
            },
            t0,
        );
        for _ in 0..3 {
            assert!(b.take(t0).is_ok());
        }
        let wait = b.take(t0).expect_err("empty");
        assert_eq!(wait, Duration::from_millis(100));
        // Half a token later: still empty, 50 ms to go.
        let wait = b.take(t0 + Duration::from_millis(50)).expect_err("half");
        assert_eq!(wait.as_millis(), 50);
        assert!(b.take(t0 + Duration::from_millis(100)).is_ok());
        // Idle for long: refills only up to the burst.
        let later = t0 + Duration::from_secs(60);
        for _ in 0..3 {
            assert!(b.take(later).is_ok());
        }
        assert!(b.take(later).is_err());
    }

    #[test]
    fn the_limiter_keeps_one_bucket_per_requester_with_overrides() {
        let mut l = Limits {
            requester_rate: 1.0,
            requester_burst: Some(nz(2)),
            ..Limits::default()
        };
        l.requester_limits.insert(
            "bulk".into(),
            RateLimit {
                rate: 1.0,
                burst: nz(5),
            },
        );
        let limiter = RateLimiter::new(&l);
        let now = Instant::now();
        let spend = |who: &str| (0..10).filter(|_| limiter.take(who, now).is_ok()).count();
        assert_eq!(spend("a"), 2);
        // Another requester has its own bucket.
        assert_eq!(spend("b"), 2);
        assert_eq!(spend("bulk"), 5);
        let (limit, wait) = limiter.take("a", now).expect_err("spent");
        assert_eq!(limit.burst.get(), 2);
        assert_eq!(wait, Duration::from_secs(1));
    }

    #[test]
    fn without_a_rate_nobody_is_limited() {
        let limiter = RateLimiter::new(&Limits::default());
        let now = Instant::now();
        assert!((0..10_000).all(|_| limiter.take("a", now).is_ok()));
    }

    #[test]
    fn admission_sheds_above_the_limit_with_retry_info_and_frees_on_drop() {
        let o = Overload::new(&limits(2));
        let a = o.admit().expect("first");
        let _b = o.admit().expect("second");
        let shed = o.admit().err().expect("third is shed");
        assert_eq!(shed.code(), Code::ResourceExhausted);
        assert_eq!(
            shed.get_details_retry_info().and_then(|r| r.retry_delay),
            Some(OVERLOADED_RETRY)
        );
        assert!(shed.message().contains("limit of 2"), "{}", shed.message());
        drop(a);
        assert!(o.admit().is_ok());
    }

    #[test]
    fn a_rate_limited_requester_gets_quota_failure_and_retry_info() {
        let o = Overload::new(&Limits {
            requester_rate: 2.0,
            requester_burst: Some(nz(1)),
            ..Limits::default()
        });
        o.check_rate("r").expect("first");
        let status = o.check_rate("r").expect_err("second");
        assert_eq!(status.code(), Code::ResourceExhausted);
        let quota = status.get_details_quota_failure().expect("quota failure");
        assert_eq!(quota.violations[0].subject, "requester:r");
        let retry = status
            .get_details_retry_info()
            .and_then(|r| r.retry_delay)
            .expect("retry delay");
        assert!(retry > Duration::ZERO && retry <= Duration::from_millis(500));
        o.check_rate("other").expect("another requester");
    }

    #[tokio::test]
    async fn a_held_stream_keeps_its_slot_until_it_ends() {
        use futures::StreamExt as _;
        let o = Overload::new(&limits(1));
        let ended = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = Arc::clone(&ended);
        let mut stream = HeldStream::new(
            futures::stream::iter([1, 2]),
            tracing::Span::none(),
            o.admit().expect("slot"),
            move || flag.store(true, Ordering::SeqCst),
        );
        assert_eq!(stream.next().await, Some(1));
        assert!(o.admit().is_err(), "slot still held mid-stream");
        assert_eq!(stream.next().await, Some(2));
        assert_eq!(stream.next().await, None);
        assert!(ended.load(Ordering::SeqCst));
        assert!(o.admit().is_ok(), "slot freed at the end");
    }
}
