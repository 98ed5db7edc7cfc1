//! The soak's media: a presenter per brand publishing by WHIP and WHEP viewers watching the
//! program. A kill takes every PeerConnection with it, so in each life of the server the
//! presenters publish again and the viewers come back; each life records how many viewers
//! received video again, how soon, and how many were still receiving just before the kill.

use super::{Life, Phase};
use crate::media::{MediaServer, Refused, Showfloor};
use crate::rtc::{Publisher, Stream, Subscriber, Window};
use crate::Clock;
use serde::Serialize;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How long viewers may take to receive video again after the server is back.
const BACK_WITHIN: Duration = Duration::from_secs(30);
/// Video must arrive in each of these spans while the server lives.
const FLOW_SPAN: Duration = Duration::from_secs(3);
/// WHEP sessions set up at once.
const SUBSCRIBE_CONCURRENCY: usize = 8;
/// A viewer refused with 503 tries this many times in all (≈ 10–30 s of `Retry-After`).
const REFUSED_TRIES: u32 = 10;
/// Closing a PeerConnection whose server is gone may wait on timers; not longer than this.
const CLOSE_WITHIN: Duration = Duration::from_secs(5);

/// One life of the server, as the media saw it.
#[derive(Debug, Clone, Default, Serialize)]
pub(super) struct MediaLife {
    pub life: u32,
    pub publishers: usize,
    pub viewers: usize,
    /// Viewers that received video in this life.
    pub receiving: usize,
    /// From the server being ready to the last viewer's first video, ms.
    pub back_ms: Option<u64>,
    /// Viewers whose video was still arriving in the last span before the life ended.
    pub flowing_at_end: usize,
    /// Whether the life lasted long enough to see two spans.
    pub flow_measured: bool,
    pub error: Option<String>,
}

/// Runs the media through every life until the run stops.
pub(super) async fn media(
    sf: Arc<Showfloor>,
    brands: usize,
    viewers: usize,
    stream: Stream,
    mut life: watch::Receiver<Life>,
    mut phase: watch::Receiver<Phase>,
    clock: Clock,
) -> Vec<MediaLife> {
    let mut lives = Vec::new();
    let window = Arc::new(Window::default());
    loop {
        // Wait for the server to be up (or the run to end).
        let current = loop {
            if *phase.borrow() != Phase::Run {
                return lives;
            }
            let l = *life.borrow_and_update();
            if l.up && lives.last().is_none_or(|m: &MediaLife| m.life != l.n) {
                break l;
            }
            tokio::select! {
                c = life.changed() => if c.is_err() { return lives },
                c = phase.changed() => if c.is_err() { return lives },
            }
        };
        let mut m = MediaLife {
            life: current.n,
            ..Default::default()
        };
        let (publishers, subs) = match connect(&sf, brands, viewers, &stream, clock, &window).await
        {
            Ok(x) => x,
            Err(e) => {
                m.error = Some(format!("{e:#}"));
                lives.push(m);
                continue;
            }
        };
        m.publishers = publishers.len();
        m.viewers = subs.len();
        // Everyone receiving again?
        let video = |s: &Subscriber| s.received.video.load(Ordering::Relaxed);
        let deadline = tokio::time::Instant::now() + BACK_WITHIN;
        while subs.iter().any(|s| video(s) == 0) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        m.receiving = subs.iter().filter(|s| video(s) > 0).count();
        if m.receiving == subs.len() {
            m.back_ms = Some(clock.now_us().saturating_sub(current.ready_us) / 1000);
        }
        // Still receiving until the life ends: two snapshots FLOW_SPAN apart, the latest.
        let snap = |subs: &[Subscriber]| subs.iter().map(video).collect::<Vec<u64>>();
        let (mut before, mut now) = (None, snap(&subs));
        loop {
            tokio::select! {
                _ = tokio::time::sleep(FLOW_SPAN) => {
                    before = Some(std::mem::replace(&mut now, snap(&subs)));
                }
                c = life.changed() => {
                    let l = *life.borrow();
                    if c.is_err() || !l.up || l.n != current.n {
                        break;
                    }
                }
                c = phase.changed() => if c.is_err() || *phase.borrow() != Phase::Run { break },
            }
        }
        if let Some(before) = before {
            m.flow_measured = true;
            m.flowing_at_end = before.iter().zip(&now).filter(|(b, n)| n > b).count();
        }
        let ending = *phase.borrow() != Phase::Run;
        close(&sf, publishers, subs, ending).await;
        lives.push(m);
    }
}

/// Presenters for every brand, then the WHEP viewers.
async fn connect(
    sf: &Arc<Showfloor>,
    brands: usize,
    viewers: usize,
    stream: &Stream,
    clock: Clock,
    window: &Arc<Window>,
) -> anyhow::Result<(Vec<Publisher>, Vec<Subscriber>)> {
    sf.reconnect_control().await?;
    let mut publishers = Vec::new();
    for b in 0..brands {
        let p = sf
            .publish_brand(b, stream.clone(), clock, window.clone())
            .await
            .map_err(|e| e.context(format!("brand {b}'s presenter could not publish")))?;
        publishers.push(p);
    }
    let gate = Arc::new(tokio::sync::Semaphore::new(SUBSCRIBE_CONCURRENCY));
    let mut tasks = Vec::new();
    for i in 0..viewers {
        let (sf, window, gate) = (sf.clone(), window.clone(), gate.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await?;
            subscribe_retrying(&sf, i, clock, window).await
        }));
    }
    let mut subs = Vec::new();
    let mut failed = None;
    for (i, t) in tasks.into_iter().enumerate() {
        match t.await {
            Ok(Ok(s)) => subs.push(s),
            Ok(Err(e)) => failed = failed.or(Some(e.context(format!("WHEP viewer {i}")))),
            Err(e) => failed = failed.or(Some(anyhow::anyhow!("WHEP viewer {i}: {e}"))),
        }
    }
    if let Some(e) = failed {
        close(sf, publishers, subs, false).await;
        return Err(e);
    }
    Ok((publishers, subs))
}

/// Subscribes as the viewer page does: a 503 (the node just restarted and is busy, or is full)
/// is tried again after its `Retry-After`, up to [`REFUSED_TRIES`] times.
async fn subscribe_retrying(
    sf: &Showfloor,
    i: usize,
    clock: Clock,
    window: Arc<Window>,
) -> anyhow::Result<Subscriber> {
    let mut tries = 1;
    loop {
        match sf.subscribe(i, clock, window.clone()).await {
            Err(e) if tries < REFUSED_TRIES => {
                let Some(refused) = e.downcast_ref::<Refused>() else {
                    return Err(e);
                };
                tries += 1;
                let wait = refused.retry_after.unwrap_or(Duration::from_secs(1));
                tokio::time::sleep(wait).await;
            }
            other => return other,
        }
    }
}

/// Closes a life's PeerConnections; at the end of the run the viewers leave by WHEP DELETE.
async fn close(sf: &Showfloor, publishers: Vec<Publisher>, subs: Vec<Subscriber>, leave: bool) {
    for s in subs {
        let closing = async {
            if leave {
                sf.unsubscribe(s).await;
            } else {
                s.close().await;
            }
        };
        let _ = tokio::time::timeout(CLOSE_WITHIN, closing).await;
    }
    for p in publishers {
        let _ = tokio::time::timeout(CLOSE_WITHIN, p.close()).await;
    }
}
