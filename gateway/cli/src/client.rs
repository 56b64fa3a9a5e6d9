//! Connecting to a gateway as a client (mTLS).

use std::time::Duration;

use anyhow::Context as _;
use tonic::transport::{Channel, Endpoint};
use xgate_tls::TlsFiles;

use xgate_tls::endpoint_host;

/// A channel to the gateway at `url`, presenting the certificate in `tls`.
pub async fn connect(url: &str, tls: &TlsFiles) -> anyhow::Result<Channel> {
    xgate_tls::install_crypto_provider();
    let host = endpoint_host(url).map_err(anyhow::Error::msg)?;
    Endpoint::from_shared(url.to_owned())?
        .tls_config(tls.client_config(&host)?)?
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .with_context(|| format!("connecting to the gateway at {url}"))
}
