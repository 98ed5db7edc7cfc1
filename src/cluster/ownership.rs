//! Room ownership by lease: a node runs a room only while it holds the room's lease, and
//! every write of the room carries the lease's token, which the store fences on.

use super::{Acquired, Leases};
use crate::model::StoreOp;
use crate::rooms::ownership::{Ownership, OwnershipError, Tenure};
use crate::store::Store;
use async_trait::async_trait;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// [`Ownership`] for the nodes of a cluster.
pub struct LeaseOwnership {
    leases: Leases,
    store: Arc<dyn Store>,
}

impl LeaseOwnership {
    pub fn new(leases: Leases, store: Arc<dyn Store>) -> LeaseOwnership {
        LeaseOwnership { leases, store }
    }
}

#[async_trait]
impl Ownership for LeaseOwnership {
    /// Takes the lease, then records its token with the store (a submission holding only
    /// the `Fence`) before anything is loaded: from that commit on, the former owner's
    /// writes are refused, so the room loaded next is the final state it left.
    async fn acquire(&self, room: &str) -> Result<Tenure, OwnershipError> {
        let unsettled = |why: String| OwnershipError::Unsettled {
            room: room.to_string(),
            why,
        };
        let lease = match self.leases.try_acquire(room).await {
            Ok(Acquired::Owned(lease)) => lease,
            Ok(Acquired::HeldBy { node, .. }) => {
                return Err(OwnershipError::HeldBy {
                    room: room.to_string(),
                    node,
                })
            }
            Err(e) => return Err(unsettled(e.to_string())),
        };
        let token = lease.token();
        let claim = self.store.submit(vec![StoreOp::Fence {
            room: room.to_string(),
            token,
        }]);
        if let Err(e) = claim.await {
            let _ = lease.release().await;
            return Err(unsettled(format!(
                "the store did not record the claim: {e}"
            )));
        }
        let lost = CancellationToken::new();
        let (watch, ours) = (lease.lost(), lost.clone());
        tokio::spawn(async move {
            tokio::select! {
                reason = watch => {
                    tracing::warn!(?reason, "room lease lost");
                    ours.cancel();
                }
                _ = ours.cancelled() => {}
            }
        });
        tracing::info!(room, token, "room lease taken");
        // The lease lives in the release future: dropping the tenure stops its renewals.
        let release = Box::pin(async move {
            if let Err(e) = lease.release().await {
                tracing::debug!(error = %e, "room lease release failed; it expires instead");
            }
        });
        Ok(Tenure::new(Some(token), lost, Some(release)))
    }
}
