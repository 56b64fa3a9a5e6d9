//! Which adapter serves which record type, with one long-lived HTTP/2
//! channel per adapter endpoint.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use tonic::transport::{Channel, Endpoint};
use xgate_proto::v1::department_adapter_client::DepartmentAdapterClient;
use xgate_proto::v1::{LookupRequest, LookupResponse};
use xgate_tls::{Identity, TlsFiles};

use crate::store::Registration;

/// One registered adapter, ready to be called.
pub struct AdapterRoute {
    pub department: String,
    pub adapter_id: String,
    endpoints: Vec<(String, DepartmentAdapterClient<Channel>)>,
    next: AtomicUsize,
}

impl AdapterRoute {
    /// Opens (lazily: nothing connects until the first call) one channel per
    /// endpoint. Fails on an endpoint URL that cannot be used.
    pub fn new(registration: &Registration, tls: &TlsFiles) -> Result<AdapterRoute, String> {
        let mut endpoints = Vec::with_capacity(registration.endpoints.len());
        for url in &registration.endpoints {
            endpoints.push((url.clone(), client(url, &registration.department, tls)?));
        }
        Ok(AdapterRoute {
            department: registration.department.clone(),
            adapter_id: registration.adapter_id.clone(),
            endpoints,
            next: AtomicUsize::new(0),
        })
    }

    /// The registered endpoint URLs.
    pub fn endpoints(&self) -> impl Iterator<Item = &str> {
        self.endpoints.iter().map(|(url, _)| url.as_str())
    }

    /// The endpoint to call next (round robin).
    pub fn pick(&self) -> Option<(&str, DepartmentAdapterClient<Channel>)> {
        let n = self.endpoints.len();
        if n == 0 {
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % n;
        self.endpoints
            .get(i)
            .map(|(url, client)| (url.as_str(), client.clone()))
    }
}

/// A successful adapter call.
#[derive(Debug)]
pub struct Answered {
    pub response: LookupResponse,
    /// The endpoint whose answer this is.
    pub endpoint: String,
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
}

impl AdapterRoute {
    /// Calls the adapter once, bounded by `deadline`; the deadline is also
    /// sent as grpc-timeout so the adapter gives up when we do.
    pub async fn lookup(
        &self,
        request: LookupRequest,
        deadline: Instant,
    ) -> Result<Answered, CallError> {
        let Some((endpoint, mut client)) = self.pick() else {
            return Err(CallError::NoEndpoint);
        };
        let budget = deadline.saturating_duration_since(Instant::now());
        if budget.is_zero() {
            return Err(CallError::Timeout(budget));
        }
        let mut request = tonic::Request::new(request);
        request.set_timeout(budget);
        crate::telemetry::inject_trace_context(request.metadata_mut());
        match tokio::time::timeout(budget, client.lookup(request)).await {
            Err(_) => Err(CallError::Timeout(budget)),
            Ok(Err(status)) => {
                tracing::warn!(department = self.department, adapter = self.adapter_id, code = ?status.code(), message = status.message(), "adapter call failed");
                if matches!(
                    status.code(),
                    tonic::Code::DeadlineExceeded | tonic::Code::Cancelled
                ) {
                    Err(CallError::Timeout(budget))
                } else {
                    Err(CallError::Unavailable(status.message().to_owned()))
                }
            }
            Ok(Ok(response)) => Ok(Answered {
                response: response.into_inner(),
                endpoint: endpoint.to_owned(),
            }),
        }
    }
}

/// The host part of an endpoint URL, for TLS server-name verification.
pub fn endpoint_host(url: &str) -> Result<String, String> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| format!("endpoint `{url}` is not a URL: {e}"))?;
    if uri.scheme_str() != Some("https") {
        return Err(format!("endpoint `{url}` must use https://"));
    }
    if uri.port_u16().is_none() {
        return Err(format!("endpoint `{url}` must name a port"));
    }
    let host = uri
        .host()
        .ok_or_else(|| format!("endpoint `{url}` has no host"))?;
    Ok(host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned())
}

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
}

impl Routes {
    /// Builds the table from registrations. A registration whose endpoints
    /// cannot be used is skipped with a warning (it was checked when it was
    /// registered; this only happens if the TLS files changed since).
    pub fn build(registrations: &[Registration], tls: &TlsFiles) -> Routes {
        let mut by_type = HashMap::new();
        for registration in registrations {
            match AdapterRoute::new(registration, tls) {
                Ok(route) => {
                    let route = Arc::new(route);
                    for t in &registration.record_types {
                        by_type.insert(t.clone(), Arc::clone(&route));
                    }
                }
                Err(e) => tracing::warn!(
                    department = registration.department,
                    adapter_id = registration.adapter_id,
                    error = e,
                    "registered adapter cannot be routed to"
                ),
            }
        }
        Routes { by_type }
    }

    pub fn get(&self, record_type: &str) -> Option<&Arc<AdapterRoute>> {
        self.by_type.get(record_type)
    }

    pub fn serves(&self, record_type: &str) -> bool {
        self.by_type.contains_key(record_type)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_urls_must_be_https_with_port() {
        assert_eq!(
            endpoint_host("https://127.0.0.1:7000").as_deref(),
            Ok("127.0.0.1")
        );
        assert_eq!(endpoint_host("https://[::1]:7000").as_deref(), Ok("::1"));
        assert_eq!(
            endpoint_host("https://adapter.tax.gov:443").as_deref(),
            Ok("adapter.tax.gov")
        );
        assert!(endpoint_host("http://127.0.0.1:7000").is_err());
        assert!(endpoint_host("https://127.0.0.1").is_err());
        assert!(endpoint_host("not a url").is_err());
    }
}
