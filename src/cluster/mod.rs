//! Cluster building blocks on NATS: room ownership by a JetStream KV lease (see `docs/cluster.md`).
//!
//! A cluster is several Showfloor nodes sharing one NATS server (with JetStream) and one store.
//! Any node serves any room, but exactly one node *owns* a room's state machine at a time; that
//! node holds the room's [`lease::Lease`], whose acquisition revision is the fencing token the
//! store checks on every write.

pub mod bus;
pub mod commands;
pub mod lease;
pub mod media;
mod ownership;
pub mod viewers;

pub use bus::NatsBus;
pub use commands::ClusterRooms;
pub use lease::{Acquired, Lease, Leases, LossReason};
pub use media::MediaLink;
pub use ownership::LeaseOwnership;
pub use viewers::RemoteViewers;

use std::time::Duration;

/// Errors of the cluster layer. Each keeps the NATS error it came from as its source.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cannot connect to NATS at {url}")]
    Connect {
        url: String,
        #[source]
        source: async_nats::ConnectError,
    },
    #[error("JetStream request failed: {what}")]
    JetStream {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    #[error("JetStream request timed out: {what}")]
    TimedOut { what: String },
    #[error(
        "lease bucket {bucket:?} has max_age {found:?} but this node's lease TTL is {expected:?}; \
         every node must use the same TTL (delete the bucket or change the TTL)"
    )]
    TtlMismatch {
        bucket: String,
        found: Duration,
        expected: Duration,
    },
    #[error("lease bucket {bucket:?} is misconfigured: {detail}")]
    BucketMisconfigured { bucket: String, detail: String },
    #[error("invalid lease setting: {0}")]
    InvalidSetting(String),
    #[error("the lease of room {room:?} changed hands {attempts} times while acquiring it")]
    Contended { room: String, attempts: u32 },
}

impl ClusterError {
    pub(crate) fn jet_stream(
        what: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> ClusterError {
        ClusterError::JetStream {
            what: what.into(),
            source: Box::new(source),
        }
    }
}

/// The next message of a subscription, or `None` once it ends or `stop` is cancelled.
pub(crate) async fn next_or_stop(
    sub: &mut async_nats::Subscriber,
    stop: &tokio_util::sync::CancellationToken,
) -> Option<async_nats::Message> {
    use futures_util::StreamExt;
    tokio::select! {
        _ = stop.cancelled() => None,
        m = sub.next() => m,
    }
}

/// Connects to NATS and returns a JetStream context on that connection.
///
/// The client reconnects on its own after a disconnect; requests made meanwhile wait for the
/// connection (each caller bounds them with its own deadline).
pub async fn connect(url: &str) -> Result<async_nats::jetstream::Context, ClusterError> {
    let client = async_nats::connect(url)
        .await
        .map_err(|source| ClusterError::Connect {
            url: url.to_string(),
            source,
        })?;
    Ok(async_nats::jetstream::new(client))
}
