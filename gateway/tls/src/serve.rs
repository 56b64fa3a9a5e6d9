//! Serving a tonic router over mTLS.

use std::pin::Pin;

use tonic::transport::server::{Router, TcpIncoming};

/// A server's future: ends when its shutdown future completes (after the
/// in-flight calls finish) or on a transport error.
pub type Serving = Pin<Box<dyn Future<Output = Result<(), tonic::transport::Error>> + Send>>;

/// Serves `router` on `incoming` until `shutdown` completes.
///
/// The gateway and every adapter serve through this one function, boxed here,
/// so the HTTP/2 server under them (tonic's transport, hyper, h2 over rustls)
/// is compiled once, in this crate: an `async` body is compiled in each crate
/// that polls it, and release builds share no generic code between crates.
#[inline(never)]
pub fn serve(
    router: Router,
    incoming: TcpIncoming,
    shutdown: Pin<Box<dyn Future<Output = ()> + Send>>,
) -> Serving {
    Box::pin(router.serve_with_incoming_shutdown(incoming, shutdown))
}
