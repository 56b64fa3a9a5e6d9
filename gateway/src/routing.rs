//! Which adapter serves which record type, and the one place an adapter is
//! called ([`AdapterRoute::lookup`]): one long-lived HTTP/2 channel per
//! endpoint, least-outstanding load balancing over the endpoints whose
//! circuit breaker admits a call, a per-adapter bulkhead, a hedged second
//! request after the adapter's p95, and retries of safe failures within a
//! retry budget, every attempt bounded by the fetch's deadline (the pieces
//! are in [`crate::upstream`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::stream::{FuturesUnordered, StreamExt as _};
use rustls::pki_types::ServerName;
use tokio::sync::Semaphore;
use tonic::transport::{Channel, Endpoint};
use tracing::Instrument as _;
use xgate_proto::v1::department_adapter_client::DepartmentAdapterClient;
use xgate_proto::v1::{
    BatchLookupRequest, LookupRequest, LookupResponse, LookupStatus, TypeAnswer,
};
use xgate_tls::{Identity, TlsFiles};

use crate::metrics::{self, CallLabels};
use crate::store::Registration;
use crate::upstream::{
    Admission, Breaker, BreakerState, CallError, LatencyWindow, RetryBudget, Upstream, lock,
};

/// One endpoint of an adapter: its channel and what we know of its health.
struct EndpointSlot {
    url: String,
    client: DepartmentAdapterClient<Channel>,
    /// Attempts in flight now (the load balancer's measure).
    outstanding: AtomicUsize,
    breaker: Mutex<Breaker>,
}

/// One registered adapter, ready to be called.
pub struct AdapterRoute {
    pub department: String,
    pub adapter_id: String,
    /// The department's metric label, built once rather than on every call.
    labels: metrics::DepartmentLabels,
    endpoints: Vec<EndpointSlot>,
    /// Rotates the start of the least-outstanding scan so ties spread evenly.
    next: AtomicUsize,
    upstream: Arc<Upstream>,
    bulkhead: Arc<Semaphore>,
    latencies: Mutex<LatencyWindow>,
    budget: RetryBudget,
    /// Whether the adapter is down (no endpoint's breaker closed), as last
    /// published to health; `None` before the first publication.
    published: tokio::sync::Mutex<Option<bool>>,
}

impl AdapterRoute {
    /// Opens (lazily: nothing connects until the first call) one channel per
    /// endpoint. Fails on an endpoint URL that cannot be used.
    pub fn new(
        registration: &Registration,
        tls: &TlsFiles,
        upstream: &Arc<Upstream>,
    ) -> Result<AdapterRoute, String> {
        let config = &upstream.config;
        let mut endpoints = Vec::with_capacity(registration.endpoints.len());
        for url in &registration.endpoints {
            endpoints.push(EndpointSlot {
                url: url.clone(),
                client: client(url, &registration.department, tls)?,
                outstanding: AtomicUsize::new(0),
                breaker: Mutex::new(Breaker::new(
                    config.breaker_failures.get(),
                    config.breaker_cooldown.get(),
                )),
            });
        }
        Ok(AdapterRoute {
            department: registration.department.clone(),
            adapter_id: registration.adapter_id.clone(),
            labels: metrics::department(&registration.department),
            endpoints,
            next: AtomicUsize::new(0),
            upstream: Arc::clone(upstream),
            bulkhead: Arc::new(Semaphore::new(config.max_concurrent_calls.get())),
            latencies: Mutex::new(LatencyWindow::new(config.latency_window.get())),
            budget: RetryBudget::new(config.retry_ratio, config.retry_min_per_sec, Instant::now()),
            published: tokio::sync::Mutex::new(None),
        })
    }

    /// The registered endpoint URLs.
    pub fn endpoints(&self) -> impl Iterator<Item = &str> {
        self.endpoints.iter().map(|slot| slot.url.as_str())
    }

    /// Each endpoint's breaker state and calls in flight, in registration order.
    pub fn endpoint_states(&self) -> Vec<(String, BreakerState, usize)> {
        let now = Instant::now();
        self.endpoints
            .iter()
            .map(|slot| {
                (
                    slot.url.clone(),
                    lock(&slot.breaker).state(now),
                    slot.outstanding.load(Ordering::Relaxed),
                )
            })
            .collect()
    }

    /// The endpoint for the next attempt: of those not `tried` whose breaker
    /// admits a call, the one with the fewest attempts in flight (ties
    /// rotate). `None` when every breaker refuses.
    fn pick(&self, tried: &[usize], now: Instant) -> Option<(usize, Admission)> {
        let n = self.endpoints.len();
        if n == 0 {
            return None;
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        let mut candidates: Vec<(usize, usize)> = (0..n)
            .map(|k| (start + k) % n)
            .filter(|i| !tried.contains(i))
            .filter_map(|i| self.endpoints.get(i).map(|slot| (i, slot)))
            .filter(|(_, slot)| lock(&slot.breaker).would_admit(now))
            .map(|(i, slot)| (i, slot.outstanding.load(Ordering::Relaxed)))
            .collect();
        // Stable: among equals the rotation order stands.
        candidates.sort_by_key(|(_, outstanding)| *outstanding);
        candidates.into_iter().find_map(|(i, _)| {
            let slot = self.endpoints.get(i)?;
            match lock(&slot.breaker).admit(now) {
                Admission::Refused => None,
                admitted => Some((i, admitted)),
            }
        })
    }

    /// How long to wait for the first attempt before hedging.
    fn hedge_delay(&self) -> Duration {
        let config = &self.upstream.config;
        lock(&self.latencies).hedge_delay(
            config.hedge_min_samples,
            config.hedge_default.get(),
            config.hedge_floor.get(),
        )
    }

    /// The aggregate breaker state: open when no endpoint is closed (the
    /// adapter is down), half-open when some are not closed.
    fn aggregate(&self) -> BreakerState {
        let now = Instant::now();
        let states: Vec<BreakerState> = self
            .endpoints
            .iter()
            .map(|slot| lock(&slot.breaker).state(now))
            .collect();
        if !states.is_empty() && states.iter().all(|s| *s != BreakerState::Closed) {
            BreakerState::Open
        } else if states.iter().any(|s| *s != BreakerState::Closed) {
            BreakerState::HalfOpen
        } else {
            BreakerState::Closed
        }
    }

    /// Brings the metric and, when the adapter went down or came back, the
    /// health status up to date. Serialised, and what was published is
    /// recorded only once it was: a refresh cancelled half-way (a hedge's
    /// loser) leaves the next one to publish.
    async fn refresh_health(&self) {
        metrics::metrics()
            .breaker_state
            .get_or_create(&self.labels)
            .set(self.aggregate().gauge());
        let mut published = self.published.lock().await;
        let down = self.aggregate() == BreakerState::Open;
        if *published != Some(down) {
            tracing::warn!(
                department = self.department,
                adapter = self.adapter_id,
                down,
                "adapter availability changed"
            );
            self.upstream
                .publish(&self.department, &self.adapter_id, down)
                .await;
            *published = Some(down);
        }
    }

    /// Publishes this adapter's current health (at registration and start).
    pub async fn announce(&self) {
        let mut published = self.published.lock().await;
        let down = self.aggregate() == BreakerState::Open;
        self.upstream
            .publish(&self.department, &self.adapter_id, down)
            .await;
        *published = Some(down);
    }
}

/// A successful adapter call.
#[derive(Debug)]
pub struct Answered {
    pub response: LookupResponse,
    /// The endpoint whose answer this is.
    pub endpoint: String,
}

/// Why one attempt failed.
#[derive(Debug)]
enum AttemptError {
    Timeout,
    Status(tonic::Status),
}

impl AttemptError {
    /// Safe to send again elsewhere: the adapter could not be reached or
    /// said it is unavailable (lookups are reads; a timeout is not retried
    /// since the deadline is shared).
    fn retryable(&self) -> bool {
        matches!(self, AttemptError::Status(s) if s.code() == tonic::Code::Unavailable)
    }

    /// Whether it counts against the endpoint's breaker: it did not answer
    /// usefully. Refusals of the request itself (invalid argument,
    /// permission) show a live endpoint.
    fn is_endpoint_failure(&self) -> bool {
        match self {
            AttemptError::Timeout => true,
            AttemptError::Status(s) => matches!(
                s.code(),
                tonic::Code::Unavailable
                    | tonic::Code::Unknown
                    | tonic::Code::Internal
                    | tonic::Code::DeadlineExceeded
                    | tonic::Code::ResourceExhausted
                    | tonic::Code::Cancelled
                    | tonic::Code::DataLoss
            ),
        }
    }

    fn into_call_error(self, budget: Duration) -> CallError {
        match self {
            AttemptError::Timeout => CallError::Timeout(budget),
            AttemptError::Status(status)
                if matches!(
                    status.code(),
                    tonic::Code::DeadlineExceeded | tonic::Code::Cancelled
                ) =>
            {
                CallError::Timeout(budget)
            }
            AttemptError::Status(status) => CallError::Unavailable(status.message().to_owned()),
        }
    }
}

/// An attempt in flight on one endpoint: counted as outstanding until it
/// ends; dropped without an outcome (hedge loser, cancelled fetch) it frees
/// the half-open probe slot it may hold.
struct InFlight<'a> {
    slot: &'a EndpointSlot,
    probe: bool,
    done: bool,
}

impl<'a> InFlight<'a> {
    fn start(slot: &'a EndpointSlot, admission: Admission) -> InFlight<'a> {
        slot.outstanding.fetch_add(1, Ordering::Relaxed);
        InFlight {
            slot,
            probe: admission == Admission::Probe,
            done: false,
        }
    }

    fn finish(mut self, failed: bool) {
        let mut breaker = lock(&self.slot.breaker);
        if failed {
            breaker.on_failure(Instant::now());
        } else {
            breaker.on_success();
        }
        self.done = true;
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.slot.outstanding.fetch_sub(1, Ordering::Relaxed);
        if !self.done {
            lock(&self.slot.breaker).on_abandoned(self.probe);
        }
    }
}

impl AdapterRoute {
    /// Calls the adapter, bounded by `deadline`: one attempt on the best
    /// endpoint, a hedge to another after the p95, retries of unreachable
    /// endpoints elsewhere; the first answer wins and the others are
    /// cancelled. Every attempt sends the time left as grpc-timeout.
    pub async fn lookup(
        &self,
        request: LookupRequest,
        deadline: Instant,
    ) -> Result<Answered, CallError> {
        let started = Instant::now();
        let result = self.lookup_inner(request, deadline, started).await;
        let m = metrics::metrics();
        m.adapter_call_seconds
            .get_or_create(&self.labels)
            .observe(started.elapsed().as_secs_f64());
        m.adapter_calls
            .get_or_create(&CallLabels {
                department: self.department.clone(),
                outcome: match &result {
                    Ok(_) => "ok",
                    Err(e) => e.outcome(),
                },
            })
            .inc();
        result
    }

    async fn lookup_inner(
        &self,
        request: LookupRequest,
        deadline: Instant,
        started: Instant,
    ) -> Result<Answered, CallError> {
        if self.endpoints.is_empty() {
            return Err(CallError::NoEndpoint);
        }
        let budget = deadline.saturating_duration_since(started);
        if budget.is_zero() {
            return Err(CallError::Timeout(budget));
        }
        let Ok(_permit) = Arc::clone(&self.bulkhead).try_acquire_owned() else {
            return Err(CallError::Busy(
                self.upstream.config.max_concurrent_calls.get(),
            ));
        };
        let Some((first, admission)) = self.pick(&[], started) else {
            self.refresh_health().await;
            return Err(CallError::CircuitOpen);
        };
        self.budget.deposit(started);
        let mut tried = vec![first];
        let mut attempts = FuturesUnordered::new();
        attempts.push(self.attempt(first, admission, request.clone(), deadline, 1, false));
        let hedge_at = started + self.hedge_delay();
        let mut hedge_armed =
            self.upstream.config.hedge && self.endpoints.len() > 1 && hedge_at < deadline;
        let hedge = tokio::time::sleep_until(hedge_at.into());
        tokio::pin!(hedge);
        let mut last_error = AttemptError::Timeout;
        loop {
            tokio::select! {
                next = attempts.next() => match next {
                    None => return Err(last_error.into_call_error(budget)),
                    Some(Ok(answered)) => return Ok(answered),
                    Some(Err(error)) => {
                        let now = Instant::now();
                        if error.retryable()
                            && now < deadline
                            && tried.len() < self.endpoints.len()
                            && self.budget.try_withdraw(now)
                            && let Some((next, admission)) = self.pick(&tried, now)
                        {
                            tried.push(next);
                            metrics::metrics()
                                .adapter_retries
                                .get_or_create(&self.labels)
                                .inc();
                            let n = u32::try_from(tried.len()).unwrap_or(u32::MAX);
                            attempts.push(self.attempt(next, admission, request.clone(), deadline, n, false));
                        }
                        last_error = error;
                    }
                },
                () = &mut hedge, if hedge_armed => {
                    hedge_armed = false;
                    let now = Instant::now();
                    if tried.len() < self.endpoints.len()
                        && self.budget.try_withdraw(now)
                        && let Some((next, admission)) = self.pick(&tried, now)
                    {
                        tried.push(next);
                        metrics::metrics()
                            .adapter_hedges
                            .get_or_create(&self.labels)
                            .inc();
                        let n = u32::try_from(tried.len()).unwrap_or(u32::MAX);
                        attempts.push(self.attempt(next, admission, request.clone(), deadline, n, true));
                    }
                }
            }
        }
    }

    /// One attempt on endpoint `index`, in its own `adapter.call` span,
    /// ending by `deadline` at the latest; its outcome feeds the endpoint's
    /// breaker and, on success, the latency window.
    async fn attempt(
        &self,
        index: usize,
        admission: Admission,
        request: LookupRequest,
        deadline: Instant,
        attempt: u32,
        hedged: bool,
    ) -> Result<Answered, AttemptError> {
        let Some(slot) = self.endpoints.get(index) else {
            return Err(AttemptError::Status(tonic::Status::internal(
                "no such endpoint",
            )));
        };
        let in_flight = InFlight::start(slot, admission);
        let span = tracing::info_span!(
            "adapter.call",
            department = %self.department,
            endpoint = %slot.url,
            attempt,
            hedged
        );
        let started = Instant::now();
        let result = async {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(AttemptError::Timeout);
            }
            let mut request = tonic::Request::new(request);
            request.set_timeout(remaining);
            crate::telemetry::inject_trace_context(request.metadata_mut());
            let mut client = slot.client.clone();
            match tokio::time::timeout_at(deadline.into(), client.lookup(request)).await {
                Err(_) => Err(AttemptError::Timeout),
                Ok(Err(status)) => {
                    tracing::warn!(code = ?status.code(), message = status.message(), "adapter call failed");
                    Err(AttemptError::Status(status))
                }
                Ok(Ok(response)) => Ok(response.into_inner()),
            }
        }
        .instrument(span)
        .await;
        let outcome = match result {
            Ok(response) => {
                // Every type answered ERROR: the department's backend is
                // down even though its adapter is up.
                let backend_down = !response.answers.is_empty()
                    && response
                        .answers
                        .iter()
                        .all(|a| a.status == LookupStatus::Error as i32);
                in_flight.finish(backend_down);
                if !backend_down {
                    lock(&self.latencies).record(started.elapsed());
                }
                Ok(Answered {
                    response,
                    endpoint: slot.url.clone(),
                })
            }
            Err(error) => {
                in_flight.finish(error.is_endpoint_failure());
                Err(error)
            }
        };
        self.refresh_health().await;
        outcome
    }
}

impl AdapterRoute {
    /// Asks the adapter about many subjects at once (screening): one
    /// `BatchLookup` on the best endpoint whose breaker admits it, bounded
    /// by `deadline`, and on an unreachable endpoint once more elsewhere.
    /// No hedging: a batch is large and its answers stream, so a second copy
    /// would double the department's load rather than cut a tail.
    ///
    /// The answers by subject position; `None` for a subject the stream did
    /// not answer (it broke off). An adapter that does not speak
    /// `BatchLookup` (UNIMPLEMENTED) is asked subject by subject, a few at a
    /// time, with [`Self::lookup`].
    pub async fn batch_lookup(
        &self,
        request: BatchLookupRequest,
        deadline: Instant,
    ) -> Result<Vec<Option<Vec<TypeAnswer>>>, CallError> {
        let started = Instant::now();
        let budget = deadline.saturating_duration_since(started);
        if self.endpoints.is_empty() {
            return Err(CallError::NoEndpoint);
        }
        let Ok(permit) = Arc::clone(&self.bulkhead).try_acquire_owned() else {
            return Err(CallError::Busy(
                self.upstream.config.max_concurrent_calls.get(),
            ));
        };
        let mut tried = Vec::new();
        let mut last = AttemptError::Timeout;
        while tried.len() < self.endpoints.len().min(2) {
            let Some((index, admission)) = self.pick(&tried, Instant::now()) else {
                self.refresh_health().await;
                return Err(CallError::CircuitOpen);
            };
            tried.push(index);
            match self
                .batch_attempt(index, admission, &request, deadline)
                .await
            {
                Ok(answers) => return Ok(answers),
                Err(AttemptError::Status(s)) if s.code() == tonic::Code::Unimplemented => {
                    // Each single lookup takes its own bulkhead slot.
                    drop(permit);
                    return self.batch_by_subject(request, deadline).await;
                }
                Err(e) if e.retryable() && Instant::now() < deadline => last = e,
                Err(e) => return Err(e.into_call_error(budget)),
            }
        }
        Err(last.into_call_error(budget))
    }

    async fn batch_attempt(
        &self,
        index: usize,
        admission: Admission,
        request: &BatchLookupRequest,
        deadline: Instant,
    ) -> Result<Vec<Option<Vec<TypeAnswer>>>, AttemptError> {
        let Some(slot) = self.endpoints.get(index) else {
            return Err(AttemptError::Status(tonic::Status::internal(
                "no such endpoint",
            )));
        };
        let in_flight = InFlight::start(slot, admission);
        let n = request.subjects.len();
        let result = async {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(AttemptError::Timeout);
            }
            let mut call = tonic::Request::new(request.clone());
            call.set_timeout(remaining);
            crate::telemetry::inject_trace_context(call.metadata_mut());
            let mut client = slot.client.clone();
            let mut answers: Vec<Option<Vec<TypeAnswer>>> = vec![None; n];
            let collect = async {
                let mut stream = client.batch_lookup(call).await?.into_inner();
                while let Some(answer) = stream.message().await? {
                    if let Some(at) = usize::try_from(answer.index)
                        .ok()
                        .and_then(|i| answers.get_mut(i))
                    {
                        *at = Some(answer.answers);
                    }
                }
                Ok::<_, tonic::Status>(())
            };
            match tokio::time::timeout_at(deadline.into(), collect).await {
                Err(_) if answers.iter().any(Option::is_some) => Ok(answers),
                Err(_) => Err(AttemptError::Timeout),
                // Broke off after answering some: keep those, the rest are
                // unanswered.
                Ok(Err(status)) if answers.iter().any(Option::is_some) => {
                    tracing::warn!(code = ?status.code(), message = status.message(), "adapter batch broke off");
                    Ok(answers)
                }
                Ok(Err(status)) => Err(AttemptError::Status(status)),
                Ok(Ok(())) => Ok(answers),
            }
        }
        .instrument(tracing::info_span!(
            "adapter.batch",
            department = %self.department,
            endpoint = %slot.url,
            subjects = n
        ))
        .await;
        match &result {
            Ok(_) => in_flight.finish(false),
            Err(e) => in_flight.finish(e.is_endpoint_failure()),
        }
        self.refresh_health().await;
        result
    }

    /// The fallback for adapters without `BatchLookup`: one `Lookup` per
    /// subject, [`BATCH_FALLBACK_CONCURRENCY`] at a time.
    async fn batch_by_subject(
        &self,
        request: BatchLookupRequest,
        deadline: Instant,
    ) -> Result<Vec<Option<Vec<TypeAnswer>>>, CallError> {
        let BatchLookupRequest {
            subjects,
            record_types,
            request_id,
            purpose,
        } = request;
        let answers = futures::stream::iter(subjects.into_iter().map(|subject| {
            let single = LookupRequest {
                subject: Some(subject),
                record_types: record_types.clone(),
                request_id: request_id.clone(),
                purpose: purpose.clone(),
            };
            async move {
                self.lookup(single, deadline)
                    .await
                    .ok()
                    .map(|a| a.response.answers)
            }
        }))
        .buffered(BATCH_FALLBACK_CONCURRENCY)
        .collect::<Vec<_>>()
        .await;
        Ok(answers)
    }
}

/// Subjects asked at once of an adapter without `BatchLookup`.
const BATCH_FALLBACK_CONCURRENCY: usize = 16;

// Lives in xgate-tls so the CLI and the conformance kit check endpoints the
// way the gateway does without depending on the gateway.
pub use xgate_tls::endpoint_host;

/// A client for one endpoint of `department`'s adapter. TLS is done by our
/// own connector so the adapter's certificate must carry exactly
/// `xgate://department/<department>`: a valid certificate of another party
/// (another department's adapter, say) is refused at the handshake.
fn client(
    url: &str,
    department: &str,
    tls: &TlsFiles,
) -> Result<DepartmentAdapterClient<Channel>, String> {
    let host = endpoint_host(url)?;
    let uri: http::Uri = url
        .parse()
        .map_err(|e| format!("endpoint `{url}` is not a URL: {e}"))?;
    let authority = uri
        .authority()
        .ok_or_else(|| format!("endpoint `{url}` has no host"))?
        .as_str()
        .to_owned();
    let expected = Identity::Department(department.to_owned());
    let config = xgate_tls::rustls_client_config_for_peer(tls, expected)
        .map_err(|e| format!("TLS for `{url}`: {e}"))?;
    let server_name = ServerName::try_from(host).map_err(|e| format!("endpoint `{url}`: {e}"))?;
    let connect_to = authority.clone();
    let connector = tower::service_fn(move |_: http::Uri| {
        let (config, server_name, addr) =
            (Arc::clone(&config), server_name.clone(), connect_to.clone());
        async move {
            let tcp = tokio::net::TcpStream::connect(&addr).await?;
            tcp.set_nodelay(true)?;
            let stream = tokio_rustls::TlsConnector::from(config)
                .connect(server_name, tcp)
                .await?;
            Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
        }
    });
    // The URI tonic sees is http:// so it adds no TLS of its own: the
    // connector above already did, with the identity check.
    let channel = Endpoint::from_shared(format!("http://{authority}"))
        .map_err(|e| format!("endpoint `{url}`: {e}"))?
        .connect_timeout(Duration::from_secs(2))
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_while_idle(true)
        .connect_with_connector_lazy(connector);
    // Records can be large (63 types, several records each).
    Ok(DepartmentAdapterClient::new(channel).max_decoding_message_size(16 * 1024 * 1024))
}

/// An immutable snapshot: record type -> adapter. Swapped whole on change.
#[derive(Default)]
pub struct Routes {
    by_type: HashMap<String, Arc<AdapterRoute>>,
    by_adapter: HashMap<(String, String), Arc<AdapterRoute>>,
}

impl Routes {
    /// Builds the table from registrations, keeping the route (channels,
    /// breakers, latencies, budget) of every adapter whose endpoints did not
    /// change since `previous`. A registration whose endpoints cannot be
    /// used is skipped with a warning (it was checked when it was
    /// registered; this only happens if the TLS files changed since).
    pub fn build(
        registrations: &[Registration],
        tls: &TlsFiles,
        upstream: &Arc<Upstream>,
        previous: Option<&Routes>,
    ) -> Routes {
        let mut routes = Routes::default();
        for registration in registrations {
            let key = (
                registration.department.clone(),
                registration.adapter_id.clone(),
            );
            let kept = previous
                .and_then(|p| p.by_adapter.get(&key))
                .filter(|route| {
                    route
                        .endpoints()
                        .eq(registration.endpoints.iter().map(String::as_str))
                })
                .cloned();
            let route = match kept {
                Some(route) => route,
                None => match AdapterRoute::new(registration, tls, upstream) {
                    Ok(route) => Arc::new(route),
                    Err(e) => {
                        tracing::warn!(
                            department = registration.department,
                            adapter_id = registration.adapter_id,
                            error = e,
                            "registered adapter cannot be routed to"
                        );
                        continue;
                    }
                },
            };
            for t in &registration.record_types {
                routes.by_type.insert(t.clone(), Arc::clone(&route));
            }
            routes.by_adapter.insert(key, route);
        }
        routes
    }

    /// Publishes every adapter's health, and forgets adapters of
    /// `previous` no longer routed.
    pub async fn announce(&self, upstream: &Upstream, previous: Option<&Routes>) {
        for route in self.by_adapter.values() {
            route.announce().await;
        }
        if let Some(previous) = previous {
            for (department, adapter_id) in previous.by_adapter.keys() {
                if !self
                    .by_adapter
                    .contains_key(&(department.clone(), adapter_id.clone()))
                {
                    upstream.forget(department, adapter_id).await;
                }
            }
        }
    }

    pub fn get(&self, record_type: &str) -> Option<&Arc<AdapterRoute>> {
        self.by_type.get(record_type)
    }

    /// The route of one registered adapter.
    pub fn adapter(&self, department: &str, adapter_id: &str) -> Option<&Arc<AdapterRoute>> {
        self.by_adapter
            .get(&(department.to_owned(), adapter_id.to_owned()))
    }

    pub fn serves(&self, record_type: &str) -> bool {
        self.by_type.contains_key(record_type)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::UpstreamConfig;
    use std::time::SystemTime;

    /// A gateway identity (the channels are lazy: nothing connects).
    fn tls(dir: &std::path::Path) -> TlsFiles {
        let gateway = Identity::Gateway("xgate".into());
        let pki = xgate_tls::devpki::init(dir, std::slice::from_ref(&gateway)).expect("pki");
        pki.files(&gateway)
    }

    fn registration(endpoints: &[&str]) -> Registration {
        Registration {
            department: "tax".into(),
            adapter_id: "tax".into(),
            endpoints: endpoints.iter().map(|e| (*e).to_owned()).collect(),
            record_types: vec!["tax_registration".into()],
            registered_at: SystemTime::now(),
            last_seen: SystemTime::now(),
        }
    }

    fn open(route: &AdapterRoute, index: usize) {
        let slot = &route.endpoints[index];
        for _ in 0..route.upstream.config.breaker_failures.get() {
            lock(&slot.breaker).on_failure(Instant::now());
        }
    }

    #[tokio::test]
    async fn picks_the_least_outstanding_admitted_endpoint() {
        let dir = tempfile::tempdir().expect("tempdir");
        let upstream = Arc::new(Upstream::new(UpstreamConfig::default()));
        let route = AdapterRoute::new(
            &registration(&[
                "https://127.0.0.1:1",
                "https://127.0.0.1:2",
                "https://127.0.0.1:3",
            ]),
            &tls(dir.path()),
            &upstream,
        )
        .expect("route");
        let now = Instant::now();
        let first = |tried: &[usize]| route.pick(tried, now).map(|(i, _)| i);
        // Ties rotate.
        assert_eq!(
            [first(&[]), first(&[]), first(&[]), first(&[])],
            [Some(0), Some(1), Some(2), Some(0)]
        );
        // Busy endpoints are avoided.
        route.endpoints[0].outstanding.store(3, Ordering::Relaxed);
        route.endpoints[1].outstanding.store(1, Ordering::Relaxed);
        route.endpoints[2].outstanding.store(2, Ordering::Relaxed);
        assert_eq!(first(&[]), Some(1));
        assert_eq!(first(&[1]), Some(2), "not one already tried");
        // An open breaker is skipped however idle its endpoint.
        open(&route, 1);
        assert_eq!(first(&[]), Some(2));
        open(&route, 0);
        open(&route, 2);
        assert_eq!(first(&[]), None, "every breaker open");
        let states: Vec<BreakerState> = route.endpoint_states().into_iter().map(|s| s.1).collect();
        assert_eq!(states, vec![BreakerState::Open; 3]);
    }

    #[tokio::test]
    async fn rebuilt_routes_keep_the_state_of_unchanged_adapters() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tls = tls(dir.path());
        let upstream = Arc::new(Upstream::new(UpstreamConfig::default()));
        let one = [registration(&["https://127.0.0.1:1"])];
        let first = Routes::build(&one, &tls, &upstream, None);
        let again = Routes::build(&one, &tls, &upstream, Some(&first));
        let (a, b) = (
            first.get("tax_registration").expect("routed"),
            again.get("tax_registration").expect("routed"),
        );
        assert!(
            Arc::ptr_eq(a, b),
            "same endpoints: same route, breakers and all"
        );
        let moved = [registration(&["https://127.0.0.1:2"])];
        let changed = Routes::build(&moved, &tls, &upstream, Some(&again));
        let c = changed.get("tax_registration").expect("routed");
        assert!(!Arc::ptr_eq(b, c));
        assert!(changed.adapter("tax", "tax").is_some());
    }
}
