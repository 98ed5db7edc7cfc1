//! A viewer session's end of the seam: its bounded frame queue and its close signal. The
//! room side offers frames without waiting; the session's writer drains them.

use crate::model::Refusal;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use tokio::sync::Notify;

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
    /// Whether `request` holds one: a writer busy with frames checks this (one load) instead
    /// of polling its wait future per batch.
    requested: AtomicBool,
}

impl CloseSignal {
    pub fn request(&self, req: CloseRequest) {
        let mut r = self.request.lock();
        if r.is_none() {
            *r = Some(req);
            self.requested.store(true, Ordering::Release);
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
        if !self.requested.load(Ordering::Acquire) {
            return None;
        }
        self.request.lock().clone()
    }
}

/// The session's queue is full: it did not keep up.
#[derive(Debug)]
pub struct QueueFull;

/// A session's bounded frame queue, shared by the room (which offers) and the session's
/// writer (which takes). One short lock per offer and per frame taken, and the writer's
/// waker sits next to the frames: a broadcast to thousands of sessions touches a couple of
/// cache lines per session and wakes each writer at most once. (A tokio bounded channel
/// touched several padded lines per frame and took a semaphore lock per frame received.)
struct Queue {
    inner: Mutex<QueueState>,
    capacity: usize,
}

struct QueueState {
    frames: VecDeque<Text>,
    /// The writer waiting for a frame, if it is waiting.
    waker: Option<Waker>,
    /// Every sink is gone: once the frames are taken, the writer hears the end.
    sinks_gone: bool,
    /// The writer is gone: offers are accepted and dropped (the room hears of it by the leave).
    writer_gone: bool,
}

/// Frames queued beyond this many slots are released once the queue is empty again, so a
/// burst does not leave a large buffer behind on every connection.
const KEEP_SLOTS: usize = 64;

/// The room's hold on a queue; the last one dropped ends the writer's stream.
struct Sender(Arc<Queue>);

impl Drop for Sender {
    fn drop(&mut self) {
        let waker = {
            let mut q = self.0.inner.lock();
            q.sinks_gone = true;
            q.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// The writer's end of a session's queue.
pub struct FrameQueue(Arc<Queue>);

impl FrameQueue {
    /// The next frame; `None` once every sink is gone and nothing is left.
    pub async fn recv(&mut self) -> Option<Text> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Text>> {
        let mut q = self.0.inner.lock();
        if let Some(f) = q.frames.pop_front() {
            return Poll::Ready(Some(f));
        }
        if q.frames.capacity() > KEEP_SLOTS {
            q.frames.shrink_to(KEEP_SLOTS);
        }
        if q.sinks_gone {
            return Poll::Ready(None);
        }
        match &q.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => q.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// The next frame if one is queued.
    pub fn try_recv(&mut self) -> Option<Text> {
        self.0.inner.lock().frames.pop_front()
    }
}

impl Drop for FrameQueue {
    fn drop(&mut self) {
        let mut q = self.0.inner.lock();
        q.writer_gone = true;
        q.frames = VecDeque::new();
    }
}

/// What a room holds of a session: offer it frames, ask it to close. Cheap to clone.
#[derive(Clone)]
pub struct SessionSink {
    frames: Arc<Sender>,
    close: Arc<CloseSignal>,
    /// Wakes the writer out of its coalescing wait: once the queue is half full (so batching
    /// never turns a viewer who keeps up into a slow consumer), and for a frame that answers
    /// the viewer's own request (so a grab's result never waits for the next batch).
    urge: Arc<Notify>,
}

/// The session's own end: what its writer drains and waits on.
pub struct SessionQueue {
    pub frames: FrameQueue,
    pub close: Arc<CloseSignal>,
    pub urge: Arc<Notify>,
}

impl SessionSink {
    /// A sink holding at most `capacity` frames (at least one), and the queue its session
    /// drains.
    pub fn new(capacity: usize) -> (SessionSink, SessionQueue) {
        let queue = Arc::new(Queue {
            inner: Mutex::new(QueueState {
                frames: VecDeque::new(),
                waker: None,
                sinks_gone: false,
                writer_gone: false,
            }),
            capacity: capacity.max(1),
        });
        let close = Arc::new(CloseSignal::default());
        let urge = Arc::new(Notify::new());
        (
            SessionSink {
                frames: Arc::new(Sender(queue.clone())),
                close: close.clone(),
                urge: urge.clone(),
            },
            SessionQueue {
                frames: FrameQueue(queue),
                close,
                urge,
            },
        )
    }

    /// Queues a broadcast frame without waiting; the writer may hold it to batch it with
    /// others (write coalescing).
    pub fn offer(&self, frame: Text) -> Result<(), QueueFull> {
        let queue = &self.frames.0;
        let (waker, half_full) = {
            let mut q = queue.inner.lock();
            if q.writer_gone {
                // The session is gone; the room hears of it through its leave.
                return Ok(());
            }
            if q.frames.len() >= queue.capacity {
                return Err(QueueFull);
            }
            q.frames.push_back(frame);
            (q.waker.take(), q.frames.len() > queue.capacity / 2)
        };
        if let Some(w) = waker {
            w.wake();
        }
        if half_full {
            self.urge.notify_one();
        }
        Ok(())
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
    async fn the_writer_is_woken_by_an_offer_and_hears_the_end_after_the_last_frame() {
        let (sink, mut q) = SessionSink::new(4);
        let second = sink.clone();
        let writer = tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(f) = q.frames.recv().await {
                got.push(f.as_str().to_string());
            }
            got
        });
        tokio::task::yield_now().await;
        sink.offer(Text::from("a")).unwrap();
        second.offer(Text::from("b")).unwrap();
        drop(sink);
        tokio::task::yield_now().await;
        second.offer(Text::from("c")).unwrap();
        drop(second);
        assert_eq!(writer.await.unwrap(), ["a", "b", "c"]);
    }

    #[test]
    fn offers_to_a_session_whose_writer_is_gone_are_dropped_quietly() {
        let (sink, q) = SessionSink::new(1);
        drop(q);
        for _ in 0..3 {
            assert!(sink.offer(Text::from("x")).is_ok());
        }
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
