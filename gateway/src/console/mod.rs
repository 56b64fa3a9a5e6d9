//! The web console: auditors, department IT, admins and requesters look at
//! the gateway in a browser instead of a terminal.
//!
//! - Its own HTTPS listener (`[console] listen`, off unless configured),
//!   serving with the gateway's certificate and asking for **no** client
//!   certificate: browsers sign in with a one-time URL that the holder of
//!   an xgate certificate gets over mutual TLS (`Console.SignIn`, `xgate
//!   console login`). The session it starts is bound to that certificate's
//!   identity and role ([`session`]); its cookie is `HttpOnly`, `Secure`,
//!   `SameSite=Strict` and `__Host-` scoped, and lives `session_ttl`.
//! - Every page acts through the gateway's own gRPC services, called in
//!   process with the session's identity ([`xgate_tls::SessionIdentity`]):
//!   one set of role checks, one audit trail, for the CLI and the console.
//! - Server-rendered HTML (minijinja templates compiled into the binary),
//!   SVG charts drawn here ([`charts`]), no script; every form carries the
//!   session's CSRF token; every response says how long the server took
//!   (`Server-Timing`).

mod charts;
mod pages;
pub mod session;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tonic::{Request, Response, Status};
use xgate_proto::v1::console_server::Console as ConsoleApi;
use xgate_proto::v1::{SignInRequest, SignInResponse};
use xgate_tls::Identity;

use crate::audit::AuditService;
use crate::config::ConsoleConfig;
use crate::evaluation::EvaluationService;
use crate::gateway::GatewayState;

/// The console of a running gateway: its settings, templates and the
/// services its pages call.
pub struct Console {
    state: Arc<GatewayState>,
    audit: AuditService,
    evaluation: EvaluationService,
    settings: ConsoleConfig,
    /// `https://host:port`, no trailing slash: what sign-in URLs start with.
    public_url: String,
    templates: minijinja::Environment<'static>,
}

/// A console listening, not yet serving: bound first, so the sign-in URLs
/// can name the port the OS chose.
pub struct Bound {
    listener: TcpListener,
    pub addr: SocketAddr,
}

/// Binds the console's listener.
pub async fn bind(settings: &ConsoleConfig) -> anyhow::Result<Bound> {
    let listener = TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("binding the console {}", settings.listen))?;
    let addr = listener.local_addr()?;
    Ok(Bound { listener, addr })
}

impl Console {
    pub fn new(
        state: Arc<GatewayState>,
        audit: AuditService,
        settings: ConsoleConfig,
        addr: SocketAddr,
    ) -> anyhow::Result<Arc<Console>> {
        let public_url = match &settings.public_url {
            Some(url) => {
                anyhow::ensure!(
                    url.starts_with("https://"),
                    "[console] public_url must be an https:// URL, not `{url}`"
                );
                url.trim_end_matches('/').to_owned()
            }
            None => format!("https://{addr}"),
        };
        Ok(Arc::new(Console {
            evaluation: EvaluationService(Arc::clone(&state)),
            state,
            audit,
            settings,
            public_url,
            templates: pages::templates()?,
        }))
    }

    /// The console's address as sign-in URLs give it.
    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// A one-time sign-in URL for `identity`, and when it stops working.
    pub async fn sign_in_url(&self, identity: &Identity) -> Result<(String, SystemTime), Status> {
        match identity {
            Identity::Auditor(_)
            | Identity::Department(_)
            | Identity::Admin(_)
            | Identity::Requester(_) => {}
            other => {
                return Err(Status::permission_denied(format!(
                    "`{other}` cannot sign in to the console: auditors, departments, admins and requesters can"
                )));
            }
        }
        let token = session::token().map_err(crate::error::status)?;
        let now = SystemTime::now();
        let expires_at = now + self.settings.sign_in_ttl.get();
        self.state
            .store
            .console_sign_in(&token, identity, now, expires_at)
            .await
            .map_err(crate::error::status)?;
        Ok((
            format!("{}/signin?token={token}", self.public_url),
            expires_at,
        ))
    }

    /// Serves the console on `bound` until the task is aborted.
    pub fn serve(self: &Arc<Console>, bound: Bound) -> anyhow::Result<JoinHandle<()>> {
        let tls = xgate_tls::rustls_web_server_config(&self.state.tls)
            .context("the console's TLS (the gateway's certificate and key)")?;
        let router = pages::router(Arc::clone(self));
        tracing::info!(addr = %bound.addr, url = %self.public_url, "console serving");
        Ok(tokio::spawn(accept(bound.listener, tls, router)))
    }
}

/// Time allowed for a TLS handshake and for a request's headers: a browser
/// takes milliseconds; a connection that dawdles is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

async fn accept(listener: TcpListener, tls: Arc<rustls::ServerConfig>, router: axum::Router) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "console: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let router = router.clone();
        tokio::spawn(async move {
            let stream =
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(e)) => {
                        tracing::debug!(error = %e, "console: TLS handshake failed");
                        return;
                    }
                    Err(_) => return,
                };
            let io = hyper_util::rt::TokioIo::new(stream);
            let service = hyper_util::service::TowerToHyperService::new(router);
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HANDSHAKE_TIMEOUT)
                .serve_connection(io, service)
                .await
            {
                tracing::debug!(error = %e, "console connection ended");
            }
        });
    }
}

/// `xgate.v1.Console`: a sign-in URL for the calling certificate.
#[derive(Clone)]
pub struct ConsoleService(pub Option<Arc<Console>>);

#[tonic::async_trait]
impl ConsoleApi for ConsoleService {
    async fn sign_in(
        &self,
        request: Request<SignInRequest>,
    ) -> Result<Response<SignInResponse>, Status> {
        let identity = xgate_tls::peer_identity(&request)?;
        let console = self.0.as_ref().ok_or_else(|| {
            Status::failed_precondition(
                "the web console is not enabled on this gateway (configure `[console] listen`)",
            )
        })?;
        let (url, expires_at) = console.sign_in_url(&identity).await?;
        tracing::info!(identity = %identity, "console sign-in URL issued");
        Ok(Response::new(SignInResponse {
            url,
            expires_at: Some(prost_types::Timestamp::from(expires_at)),
            identity: identity.uri(),
        }))
    }
}
