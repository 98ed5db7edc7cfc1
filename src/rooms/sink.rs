//! A viewer session's end of the seam: its bounded frame queue and its close signal. The
//! room side offers frames without waiting; the session's writer drains them.

use crate::model::Refusal;
use parking_lot::Mutex;
use std::sync::Arc;
use tokio::sync::{mpsc, Notify};

/// A frame as a session's writer takes it: checked as UTF-8 once per event and class, then
/// shared by every viewer of the class by reference count (the socket writes it as is).
pub type Text = axum::extract::ws::Utf8Bytes;

/// How the room asks a session to close: why, and whether what is queued goes out first.
#[derive(Debug, Clone)]
pub struct CloseRequest {
    pub why: Refusal,
    /// Send what is already queued first (a kick's explanation); not for slow consumers.
    pub drain: bool,
}

/// Set once; the session's reader and writer both wait on it.
#[derive(Default)]
pub struct CloseSignal {
    notify: Notify,
    request: Mutex<Option<CloseRequest>>,
}

impl CloseSignal {
    pub fn request(&self, req: CloseRequest) {
        let mut r = self.request.lock();
        if r.is_none() {
            *r = Some(req);
            self.notify.notify_waiters();
        }
    }

    pub async fn wait(&self) -> CloseRequest {
        loop {
            // Registered before checking, so a request in between is not missed.
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(r) = self.request.lock().clone() {
                return r;
            }
            notified.await;
        }
    }

    pub fn get(&self) -> Option<CloseRequest> {
        self.request.lock().clone()
    }
}

/// The session's queue is full: it did not keep up.
#[derive(Debug)]
pub struct QueueFull;

/// What a room holds of a session: offer it frames, ask it to close. Cheap to clone.
#[derive(Clone)]
pub struct SessionSink {
    frames: mpsc::Sender<Text>,
    close: Arc<CloseSignal>,
    /// Wakes the writer out of its coalescing wait: once the queue is half full (so batching
    /// never turns a viewer who keeps up into a slow consumer), and for a frame that answers
    /// the viewer's own request (so a grab's result never waits for the next batch).
    urge: Arc<Notify>,
}

/// The session's own end: what its writer drains and waits on.
pub struct SessionQueue {
    pub frames: mpsc::Receiver<Text>,
    pub close: Arc<CloseSignal>,
    pub urge: Arc<Notify>,
}

impl SessionSink {
    /// A sink holding at most `capacity` frames, and the queue its session drains.
    pub fn new(capacity: usize) -> (SessionSink, SessionQueue) {
        let (tx, rx) = mpsc::channel(capacity);
        let close = Arc::new(CloseSignal::default());
        let urge = Arc::new(Notify::new());
        (
            SessionSink {
                frames: tx,
                close: close.clone(),
                urge: urge.clone(),
            },
            SessionQueue {
                frames: rx,
                close,
                urge,
            },
        )
    }

    /// Queues a broadcast frame without waiting; the writer may hold it to batch it with
    /// others (write coalescing).
    pub fn offer(&self, frame: Text) -> Result<(), QueueFull> {
        match self.frames.try_send(frame) {
            Ok(()) => {
                if self.frames.capacity() < self.frames.max_capacity() / 2 {
                    self.urge.notify_one();
                }
                Ok(())
            }
            Err(mpsc::error::TrySendError::Full(_)) => Err(QueueFull),
            // The session is gone; the room hears of it through its leave.
            Err(mpsc::error::TrySendError::Closed(_)) => Ok(()),
        }
    }

    /// Queues an answer to this session's own request: written without the coalescing wait.
    pub fn offer_now(&self, frame: Text) -> Result<(), QueueFull> {
        self.offer(frame)?;
        self.urge.notify_one();
        Ok(())
    }

    /// Asks the session to close (the first request wins).
    pub fn close(&self, why: Refusal, drain: bool) {
        self.close.request(CloseRequest { why, drain });
    }

    /// Whether a close was requested already.
    pub fn is_closing(&self) -> bool {
        self.close.get().is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::EndReason;

    #[tokio::test]
    async fn a_full_queue_is_reported_and_a_close_request_is_kept_once() {
        let (sink, mut q) = SessionSink::new(2);
        sink.offer(Text::from("a")).unwrap();
        sink.offer_now(Text::from("b")).unwrap();
        assert!(sink.offer(Text::from("c")).is_err());
        assert_eq!(q.frames.recv().await.unwrap().as_str(), "a");
        sink.close(
            Refusal::new(EndReason::SlowConsumer, "slow consumer"),
            false,
        );
        sink.close(Refusal::new(EndReason::ShuttingDown, "later"), true);
        let req = q.close.wait().await;
        assert_eq!(req.why.reason, EndReason::SlowConsumer);
        assert!(sink.is_closing());
    }

    #[tokio::test]
    async fn an_answer_wakes_the_writer_a_broadcast_does_not() {
        let (sink, q) = SessionSink::new(64);
        sink.offer(Text::from("broadcast")).unwrap();
        let woken = tokio::time::timeout(std::time::Duration::from_millis(20), q.urge.notified());
        assert!(woken.await.is_err(), "a broadcast may wait for the batch");
        sink.offer_now(Text::from("answer")).unwrap();
        let woken = tokio::time::timeout(std::time::Duration::from_millis(20), q.urge.notified());
        assert!(woken.await.is_ok(), "an answer ends the wait");
    }
}
