//! mTLS plumbing shared by the gateway and the department adapters.
//!
//! Every xgate connection is mutual TLS against one CA. A party's identity is the single
//! `xgate://<kind>/<id>` URI subject alternative name of its certificate ([`Identity`]):
//! `requester` (approval-bureau systems), `department` (adapters), `gateway` (the gateway when
//! it calls adapters), `admin` (operators) and `auditor` (auditors).
//!
//! - [`TlsFiles`] loads a party's certificate, key and CA and builds tonic server and client
//!   configs (client certificates required), or raw rustls configs with
//!   [`rustls_server_config`] / [`rustls_client_config`].
//! - [`peer_identity`] names the authenticated caller of a tonic request.
//! - [`endpoint_host`] checks an `https://host:port` endpoint URL and names the host to verify.
//! - [`serve`] serves a tonic router (the gateway's and every adapter's).
//! - [`devpki`] creates a development CA and issues certificates from it.
//!
//! Only the ring crypto provider is used; call [`install_crypto_provider`] first thing in every
//! `main` and test, because tonic builds its rustls configs from the process-wide provider.

mod config;
pub mod devpki;
mod endpoint;
mod error;
mod identity;
pub mod role;
mod serve;

pub use config::{
    TlsFiles, install_crypto_provider, load_certs, load_private_key, rustls_client_config,
    rustls_client_config_for_peer, rustls_server_config, rustls_web_server_config,
};
pub use endpoint::endpoint_host;
pub use error::TlsError;
pub use identity::{Identity, SessionIdentity, identity_from_der, peer_identity};
pub use role::Role;
pub use serve::{Serving, serve};

#[cfg(test)]
mod tests;
