//! The department's objection queue, for adapters that handle objections
//! in code: the same calls `xgate objection list|ack|dispose` makes, over
//! mTLS with the department's certificate (the adapter's own), to the
//! gateway's `Evaluation` service.
//!
//! ```no_run
//! # async fn run(tls: xgate_tls::TlsFiles) -> anyhow::Result<()> {
//! use xgate_adapter_sdk::objections::{Outcome, Queue};
//! let mut queue = Queue::connect("https://127.0.0.1:8443", &tls)?;
//! for objection in queue.open().await? {
//!     queue.acknowledge(&objection.id).await?;
//!     // ... check the record against the evidence, correct it or not ...
//!     queue
//!         .dispose(&objection.id, Outcome::Rejected, "the record stands")
//!         .await?;
//! }
//! # Ok(()) }
//! ```

use std::time::Duration;

use tonic::transport::{Channel, Endpoint};
use xgate_proto::v1::evaluation_client::EvaluationClient;
use xgate_proto::v1::{
    DisposeObjectionRequest, Disposition, ListObjectionsRequest, Objection, ObjectionRef,
    ObjectionState,
};
use xgate_tls::TlsFiles;

/// How a department disposes of an objection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The record was wrong and is corrected at the source; the gateway
    /// drops its cached copies.
    Corrected,
    /// The record stands.
    Rejected,
}

/// A department's view of its objection queue.
#[derive(Debug, Clone)]
pub struct Queue {
    client: EvaluationClient<Channel>,
}

impl Queue {
    /// A queue client for `gateway` (`https://host:port`) with the
    /// department's certificate; connects on first use.
    pub fn connect(gateway: &str, tls: &TlsFiles) -> anyhow::Result<Queue> {
        let uri: http::Uri = gateway.parse()?;
        let host = uri
            .host()
            .ok_or_else(|| anyhow::anyhow!("gateway URL `{gateway}` has no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let channel = Endpoint::from(uri)
            .tls_config(tls.client_config(&host)?)?
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .connect_lazy();
        Ok(Queue {
            client: EvaluationClient::new(channel),
        })
    }

    /// The objections against this department's records still owed an
    /// answer (reported or circulated), oldest change first.
    pub async fn open(&mut self) -> Result<Vec<Objection>, tonic::Status> {
        Ok(self
            .client
            .list(ListObjectionsRequest {
                states: vec![
                    ObjectionState::Reported as i32,
                    ObjectionState::Circulated as i32,
                ],
                id: String::new(),
            })
            .await?
            .into_inner()
            .objections)
    }

    /// Acknowledges an objection: it is being looked at (CIRCULATED).
    pub async fn acknowledge(&mut self, id: &str) -> Result<Objection, tonic::Status> {
        Ok(self
            .client
            .acknowledge(ObjectionRef { id: id.to_owned() })
            .await?
            .into_inner())
    }

    /// Disposes of an objection with the reason the filer will read.
    pub async fn dispose(
        &mut self,
        id: &str,
        outcome: Outcome,
        reason: &str,
    ) -> Result<Objection, tonic::Status> {
        let disposition = match outcome {
            Outcome::Corrected => Disposition::Corrected,
            Outcome::Rejected => Disposition::Rejected,
        };
        Ok(self
            .client
            .dispose(DisposeObjectionRequest {
                id: id.to_owned(),
                disposition: disposition as i32,
                reason: reason.to_owned(),
            })
            .await?
            .into_inner())
    }
}
