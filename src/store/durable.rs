//! The handle a write's submitter waits on until the write is durable, and its other end.

use super::StoreError;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::sync::oneshot;

/// Resolves once the writes it belongs to are durable (committed and synced), or with the
/// reason they are not. Await it, or call [`Durable::wait`]; dropping it is fine (the writes
/// still happen).
pub struct Durable(oneshot::Receiver<Result<(), StoreError>>);

/// The backend's end of a [`Durable`]: it reports the outcome once. Dropped without a report,
/// its `Durable` resolves to [`StoreError::Closed`].
pub struct DurableSender(oneshot::Sender<Result<(), StoreError>>);

impl Durable {
    /// A pending `Durable` and the sender that resolves it.
    pub fn pair() -> (DurableSender, Durable) {
        let (tx, rx) = oneshot::channel();
        (DurableSender(tx), Durable(rx))
    }

    /// A `Durable` that has resolved already.
    pub fn done(result: Result<(), StoreError>) -> Durable {
        let (tx, durable) = Durable::pair();
        tx.send(result);
        durable
    }

    pub async fn wait(self) -> Result<(), StoreError> {
        self.await
    }
}

impl Future for Durable {
    type Output = Result<(), StoreError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0)
            .poll(cx)
            .map(|r| r.unwrap_or(Err(StoreError::Closed)))
    }
}

impl DurableSender {
    /// Resolves the `Durable`; nobody waiting on it is fine.
    pub fn send(self, result: Result<(), StoreError>) {
        let _ = self.0.send(result);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Violation;

    #[tokio::test]
    async fn resolves_with_what_was_sent_or_closed_when_dropped() {
        assert!(Durable::done(Ok(())).await.is_ok());
        let refused = Durable::done(Err(StoreError::Refused {
            op: "PutOrder",
            violation: Violation::Duplicate,
            source: None,
        }));
        assert_eq!(
            refused.wait().await.unwrap_err().violation(),
            Some(Violation::Duplicate)
        );
        let (tx, durable) = Durable::pair();
        drop(tx);
        assert!(matches!(durable.await, Err(StoreError::Closed)));
    }
}
