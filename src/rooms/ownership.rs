//! Who owns a room: this node alone ([`SoleNode`]), or the holder of the room's lease in a
//! cluster. The hub asks before it loads a room and keeps the [`Tenure`] while it runs it.

use async_trait::async_trait;
use futures_util::future::BoxFuture;
use tokio_util::sync::CancellationToken;

/// Why this node may not run a room now.
#[derive(Debug, Clone, thiserror::Error)]
pub enum OwnershipError {
    /// Another node owns it.
    #[error("room {room} is owned by node {node}")]
    HeldBy { room: String, node: String },
    /// Ownership could not be settled (the lease service or the store did not answer).
    #[error("ownership of room {room} cannot be settled now: {why}")]
    Unsettled { room: String, why: String },
}

/// This node's hold on a room, from [`Ownership::acquire`] until it is lost or released.
pub struct Tenure {
    /// The fencing token every write of the room carries (`StoreOp::Fence`); `None` on a
    /// node that owns every room by definition.
    pub fence: Option<u64>,
    /// Cancelled when the node no longer owns the room: the room must stop at once.
    pub lost: CancellationToken,
    release: Option<BoxFuture<'static, ()>>,
}

impl Tenure {
    /// A tenure that `release` ends (best effort, e.g. deleting a lease key).
    pub fn new(
        fence: Option<u64>,
        lost: CancellationToken,
        release: Option<BoxFuture<'static, ()>>,
    ) -> Tenure {
        Tenure {
            fence,
            lost,
            release,
        }
    }

    /// Gives the room up so that another node can take it at once.
    pub async fn release(mut self) {
        self.lost.cancel();
        if let Some(release) = self.release.take() {
            release.await;
        }
    }
}

#[async_trait]
pub trait Ownership: Send + Sync + 'static {
    /// Takes `room` for this node. On success, nothing the former owner writes can land
    /// any more (its fence is recorded), so the room can be loaded from the store.
    async fn acquire(&self, room: &str) -> Result<Tenure, OwnershipError>;
}

/// A single node: it owns every room, with no fence and no end.
pub struct SoleNode;

#[async_trait]
impl Ownership for SoleNode {
    async fn acquire(&self, _room: &str) -> Result<Tenure, OwnershipError> {
        Ok(Tenure::new(None, CancellationToken::new(), None))
    }
}
