//! xgate's end-to-end load harness (issue 5, part 5).
//!
//! - [`load`]: the load client's engine — tonic over mTLS (or plaintext for the h2load
//!   cross-check), fixed concurrency, warm-up then a measured window, counts by gRPC status
//!   and by per-record status, HdrHistogram latencies. The `xgate-load` binary is its CLI.
//! - [`department`]: the bench adapter's department: any catalog department, records from the
//!   synthetic generators, a fixed added latency; and its bench-only plaintext listener.
//!   The `xgate-bench-adapter` binary serves it through the adapter SDK.
//! - [`nginx`]: the nginx `grpc_pass` configuration of arm (b).
//! - [`proc`]: resident memory of a process, from `/proc`.
//! - [`replicas`]: registry propagation and quota exactness across gateway replicas on
//!   PostgreSQL.
//! - [`screening`]: subjects screened per second (batch lookups) against one at a time.
//!
//! The `xgate-bench` binary orchestrates the runs (see `BENCHMARKS.md`).

pub mod department;
pub mod load;
pub mod nginx;
pub mod proc;
pub mod replicas;
pub mod screening;

/// A free TCP port on 127.0.0.1 for a child that cannot report the one it bound (nginx, the
/// bench adapter's plaintext listener). The port is released before the child binds it; on
/// loopback with ports chosen by the OS a collision in between is unlikely, and shows as a
/// bind error of the child.
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}
