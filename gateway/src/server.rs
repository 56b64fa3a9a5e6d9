//! Starting a gateway: load and check everything, bind, serve.

use crate::evaluation::EvaluationService;
use std::net::SocketAddr;
use std::sync::Arc;
use xgate_proto::v1::console_server::ConsoleServer;
use xgate_proto::v1::evaluation_server::EvaluationServer;
use xgate_proto::v1::screening_server::ScreeningServer;

use anyhow::Context as _;
use futures::future::BoxFuture;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::server::NamedService;
use tonic::transport::Server;
use tonic::transport::server::{Router, TcpIncoming};
use tonic_health::pb::health_server::HealthServer;
use xgate_catalog::Catalog;
use xgate_policy::PolicySet;
use xgate_proto::v1::exchange_server::ExchangeServer;
use xgate_proto::v1::registry_server::RegistryServer;

use crate::audit::{AdminEvent, AuditService};
use crate::cluster::Cluster;
use crate::config::Config;
use crate::gateway::{ExchangeService, GatewayState, RegistryService};
use crate::policy_admin::{self, PolicyAdminService};
use crate::store::Store;
use xgate_proto::v1::audit_server::AuditServer;
use xgate_proto::v1::policy_admin_server::PolicyAdminServer;

/// Decoded-message ceiling for every service: far above any valid request,
/// it only protects memory. The precise, smaller Fetch limit is
/// `limits.max_request_bytes` (INVALID_ARGUMENT with details).
const MAX_DECODING_BYTES: usize = 4 * 1024 * 1024;

/// A gateway serving in this process.
pub struct RunningGateway {
    pub addr: SocketAddr,
    /// Where `GET /metrics` is served (`[telemetry] metrics_listen`).
    pub metrics_addr: Option<SocketAddr>,
    metrics_task: Option<JoinHandle<()>>,
    /// The web console (`[console]`), when configured.
    pub console: Option<Arc<crate::console::Console>>,
    pub console_addr: Option<SocketAddr>,
    console_task: Option<JoinHandle<()>>,
    pub state: Arc<GatewayState>,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), tonic::transport::Error>>,
    /// Keeps the policy directory watched while the gateway runs.
    _watcher: Option<notify::RecommendedWatcher>,
    sighup: JoinHandle<()>,
    /// Follows registry changes of other replicas (PostgreSQL only).
    registry_follower: Option<JoinHandle<()>>,
    /// This replica in the shared replica table, and its heartbeat.
    pub cluster: Arc<Cluster>,
    heartbeat: JoinHandle<()>,
}

impl RunningGateway {
    /// Stops accepting, lets in-flight requests finish, and waits.
    // Boxed here, like `start`: compiled in this crate, not in each caller.
    #[inline(never)]
    pub fn stop(self) -> BoxFuture<'static, anyhow::Result<()>> {
        Box::pin(self.stop_now())
    }

    async fn stop_now(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        (&mut self.task).await.context("gateway task")??;
        self.sighup.abort();
        if let Some(task) = self.registry_follower.take() {
            task.abort();
        }
        if let Some(task) = self.metrics_task.take() {
            task.abort();
        }
        if let Some(task) = self.console_task.take() {
            task.abort();
        }
        self.heartbeat.abort();
        self.cluster.leave().await;
        self.state.store.close().await;
        // A final signed checkpoint, then the store closes.
        if let Err(e) = self.state.auditor.checkpoint().await {
            tracing::warn!(error = %e, "final audit checkpoint failed");
        }
        self.state.auditor.store().close().await;
        Ok(())
    }

    /// Serves until the task ends (it ends only on error or `stop`).
    #[inline(never)]
    pub fn wait(self) -> BoxFuture<'static, anyhow::Result<()>> {
        Box::pin(self.wait_now())
    }

    async fn wait_now(mut self) -> anyhow::Result<()> {
        (&mut self.task).await.context("gateway task")??;
        Ok(())
    }
}

/// Loads catalog, policies and registrations (any error stops start-up
/// with a message naming the file), binds and starts serving.
///
/// The future is boxed here on purpose: an `async fn`'s body is compiled in
/// the crate that polls it, and this one awaits the gateway's whole serving
/// stack (tonic, hyper, h2, rustls, sqlx). Boxed, it is compiled once, in
/// this crate, with the rest of the hot path, instead of again in the CLI
/// and in every test binary (BENCHMARKS.md, issue 14).
#[inline(never)]
pub fn start(config: &Config) -> BoxFuture<'_, anyhow::Result<RunningGateway>> {
    Box::pin(start_now(config))
}

async fn start_now(config: &Config) -> anyhow::Result<RunningGateway> {
    xgate_tls::install_crypto_provider();
    let catalog = match &config.catalog_dir {
        Some(dir) => Catalog::load_dir(dir)?,
        None => Catalog::builtin()?,
    };
    let auditor = crate::audit::open(config).await?;
    let policies = match load_policies(config, &catalog, &auditor).await {
        Ok(policies) => policies,
        Err(e) => {
            close_auditor(auditor).await;
            return Err(e);
        }
    };
    let store = Store::open(&config.database).await?;
    let tls = config.tls.files();
    let server_tls = tls.server_config()?;
    let identity = tls.identity().context("reading the gateway certificate")?;
    tracing::info!(
        identity = %identity,
        record_types = catalog.len(),
        policy_set = policies.version(),
        "gateway starting"
    );
    let state = GatewayState::new(
        catalog,
        policies,
        config.policies_dir.clone(),
        store,
        tls,
        config.limits.clone(),
        Arc::clone(&auditor),
        &config.cache,
        config.upstream.clone(),
        config
            .subject_codes
            .verifier()
            .context("[subject_codes] issuers")?,
    )
    .await?;
    let sighup = policy_admin::reload_on_sighup(Arc::clone(&state.policies))
        .context("installing the SIGHUP handler")?;
    let watcher = if config.watch_policies {
        Some(
            policy_admin::reload_on_change(Arc::clone(&state.policies))
                .with_context(|| format!("watching {}", config.policies_dir.display()))?,
        )
    } else {
        None
    };

    let incoming = TcpIncoming::bind(config.listen)
        .with_context(|| format!("binding {}", config.listen))?
        .with_nodelay(Some(true));
    let addr = incoming.local_addr()?;

    let health = health_service(&state).await;
    let cluster = Cluster::new(
        addr.to_string(),
        state.store.clone(),
        Arc::clone(&state.policies),
        Arc::clone(&state.auditor),
    );
    // Listed before the first fetch is answered; a database that cannot
    // take the row now will not take a fetch's quota or registry read either.
    cluster
        .beat()
        .await
        .context("reporting this replica in the gateway database")?;
    let metrics = match config.telemetry.metrics_listen {
        Some(listen) => {
            Some(crate::telemetry::serve_metrics(listen, endpoints(&state, &cluster)).await?)
        }
        None => None,
    };
    let audit = AuditService {
        log: auditor,
        presence: crate::codes::Presence {
            verifier: state.codes.clone(),
            store: state.store.clone(),
        },
    };
    let (console, console_addr, console_task) = match &config.console {
        Some(settings) => {
            let bound = crate::console::bind(settings).await?;
            let addr = bound.addr;
            let console = crate::console::Console::new(
                Arc::clone(&state),
                audit.clone(),
                settings.clone(),
                addr,
            )?;
            let task = console.serve(bound)?;
            (Some(console), Some(addr), Some(task))
        }
        None => (None, None, None),
    };
    let router = router(
        config,
        server_tls,
        &state,
        &cluster,
        audit,
        console.clone(),
        health,
    )?;
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(xgate_tls::serve(
        router,
        incoming,
        Box::pin(async {
            let _ = rx.await;
        }),
    ));
    tracing::info!(%addr, "gateway serving");
    let registry_follower = crate::gateway::follow_registry(&state);
    let heartbeat = cluster.spawn();
    Ok(RunningGateway {
        addr,
        metrics_addr: metrics.as_ref().map(|(addr, _)| *addr),
        metrics_task: metrics.map(|(_, task)| task),
        console,
        console_addr,
        console_task,
        state,
        shutdown: Some(tx),
        task,
        _watcher: watcher,
        sighup,
        registry_follower,
        cluster,
        heartbeat,
    })
}

/// What the metrics listener serves: gauges read from their owners at
/// scrape time, and this replica's health detail.
fn endpoints(state: &Arc<GatewayState>, cluster: &Arc<Cluster>) -> crate::telemetry::Endpoints {
    let auditor = Arc::clone(&state.auditor);
    let policies = Arc::clone(&state.policies);
    let instance = cluster.instance().to_owned();
    let refresh: crate::telemetry::Refresh = Arc::new(move || {
        let metrics = crate::metrics::metrics();
        metrics
            .audit_queue_depth
            .set(i64::try_from(auditor.queue_depth()).unwrap_or(i64::MAX));
        metrics
            .audit_tamper_alarms
            .set(i64::try_from(auditor.alarms()).unwrap_or(i64::MAX));
        // One series: the set active now (a swapped-out set's series goes).
        metrics.policy_set.clear();
        metrics
            .policy_set
            .get_or_create(&crate::metrics::PolicySetLabels {
                version: policies.current().version().to_owned(),
                instance: instance.clone(),
            })
            .set(1);
    });
    let cluster = Arc::clone(cluster);
    crate::telemetry::Endpoints {
        refresh,
        health: Arc::new(move || cluster.health()),
    }
}

/// The policy set of `config`; its load, or why it was rejected, goes to
/// the audit log.
async fn load_policies(
    config: &Config,
    catalog: &Catalog,
    auditor: &crate::audit::Auditor,
) -> anyhow::Result<PolicySet> {
    match PolicySet::load_dir(&config.policies_dir, catalog) {
        Ok(policies) => {
            let loaded = AdminEvent::PolicySetLoaded {
                version: policies.version().to_owned(),
                policies: policies.policy_ids().len(),
            };
            crate::audit::admin_event(auditor, "gateway", loaded).await;
            Ok(policies)
        }
        Err(e) => {
            let rejected = AdminEvent::PolicySetRejected {
                reason: e.to_string(),
            };
            crate::audit::admin_event(auditor, "gateway", rejected).await;
            anyhow::bail!("policy set rejected:\n{e}")
        }
    }
}

/// `grpc.health.v1`: every service SERVING, and `xgate.adapter.<department>`
/// NOT_SERVING while its adapter's breakers are open.
async fn health_service(
    state: &Arc<GatewayState>,
) -> HealthServer<impl tonic_health::pb::health_server::Health> {
    let (reporter, service) = tonic_health::server::health_reporter();
    reporter
        .set_serving::<ExchangeServer<ExchangeService>>()
        .await;
    reporter
        .set_serving::<RegistryServer<RegistryService>>()
        .await;
    reporter
        .set_serving::<PolicyAdminServer<PolicyAdminService>>()
        .await;
    reporter.set_serving::<AuditServer<AuditService>>().await;
    reporter
        .set_serving::<xgate_proto::v1::consent_server::ConsentServer<crate::consent::ConsentService>>()
        .await;
    reporter
        .set_serving::<EvaluationServer<EvaluationService>>()
        .await;
    reporter
        .set_serving::<ConsoleServer<crate::console::ConsoleService>>()
        .await;
    reporter
        .set_serving::<ScreeningServer<crate::screening::ScreeningService>>()
        .await;
    state.upstream.set_health_reporter(reporter.clone());
    state.routes.load().announce(&state.upstream, None).await;
    service
}

/// The services this gateway serves, as reflection lists them.
/// `xgate.v1.DepartmentAdapter` shares the descriptor set but is served by
/// adapters, not here, so reflection must not advertise it.
pub const SERVED_SERVICES: &[&str] = &[
    <HealthServer<tonic_health::server::HealthService> as NamedService>::NAME,
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
    <ExchangeServer<ExchangeService> as NamedService>::NAME,
    <RegistryServer<RegistryService> as NamedService>::NAME,
    <AuditServer<AuditService> as NamedService>::NAME,
    <PolicyAdminServer<PolicyAdminService> as NamedService>::NAME,
    <xgate_proto::v1::consent_server::ConsentServer<crate::consent::ConsentService> as NamedService>::NAME,
    <EvaluationServer<EvaluationService> as NamedService>::NAME,
    <ConsoleServer<crate::console::ConsoleService> as NamedService>::NAME,
    <ScreeningServer<crate::screening::ScreeningService> as NamedService>::NAME,
];

/// Reflection over every descriptor the gateway serves, listing only
/// [`SERVED_SERVICES`]. Built twice: grpcurl and grpc-java speak v1, Python's
/// grpcio-reflection and older grpcurl only v1alpha.
fn reflection_builder() -> tonic_reflection::server::Builder<'static> {
    SERVED_SERVICES.iter().fold(
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(xgate_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(
                tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
            ),
        |builder, name| builder.with_service_name(*name),
    )
}

/// Every gRPC service behind the HTTP/2 bounds and TLS.
fn router(
    config: &Config,
    server_tls: tonic::transport::ServerTlsConfig,
    state: &Arc<GatewayState>,
    cluster: &Arc<Cluster>,
    audit: AuditService,
    console: Option<Arc<crate::console::Console>>,
    health: HealthServer<impl tonic_health::pb::health_server::Health>,
) -> anyhow::Result<Router> {
    let reflection_v1 = reflection_builder().build_v1()?;
    let reflection_v1alpha = reflection_builder().build_v1alpha()?;
    let exchange = ExchangeServer::new(ExchangeService(Arc::clone(state)))
        .max_decoding_message_size(MAX_DECODING_BYTES);
    let registry = RegistryServer::new(RegistryService(Arc::clone(state)))
        .max_decoding_message_size(MAX_DECODING_BYTES);
    let audit = AuditServer::new(audit).max_decoding_message_size(MAX_DECODING_BYTES);
    let console = ConsoleServer::new(crate::console::ConsoleService(console))
        .max_decoding_message_size(MAX_DECODING_BYTES);
    let screening = ScreeningServer::new(crate::screening::ScreeningService(Arc::clone(state)))
        .max_decoding_message_size(MAX_DECODING_BYTES);
    let consent = xgate_proto::v1::consent_server::ConsentServer::new(
        crate::consent::ConsentService(Arc::clone(state)),
    )
    .max_decoding_message_size(MAX_DECODING_BYTES);
    let evaluation = EvaluationServer::new(EvaluationService(Arc::clone(state)))
        .max_decoding_message_size(MAX_DECODING_BYTES);
    let policy_admin = PolicyAdminServer::new(PolicyAdminService {
        policies: Arc::clone(&state.policies),
        cluster: Arc::clone(cluster),
    });
    Ok(Server::builder()
        // HTTP/2 bounds per connection; oversized headers are refused by
        // the HTTP/2 layer before any service runs.
        .max_concurrent_streams(Some(config.limits.http2_max_concurrent_streams.get()))
        .http2_max_header_list_size(Some(config.limits.http2_max_header_list_bytes.get()))
        .tls_config(server_tls)?
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(exchange)
        .add_service(registry)
        .add_service(audit)
        .add_service(consent)
        .add_service(evaluation)
        .add_service(console)
        .add_service(screening)
        .add_service(policy_admin))
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() -> std::io::Result<()> {
    shutdown_signal_armed()?.await;
    Ok(())
}

/// Installs the SIGINT and SIGTERM handlers now and returns the future that
/// completes on either. Arm it before announcing the listening address: a
/// launcher may send SIGTERM as soon as it reads that line, and a signal
/// arriving before the handler exists kills the process uncleanly.
pub fn shutdown_signal_armed() -> std::io::Result<impl Future<Output = ()> + Send> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
    })
}

async fn close_auditor(auditor: crate::audit::Auditor) {
    match Arc::try_unwrap(auditor) {
        Ok(log) => log.close().await,
        Err(shared) => shared.store().close().await,
    }
}
