//! The `switchover` scenario: WebSocket viewers and WHEP subscribers through brand switches —
//! disconnects, `brand_switched` latency, the time to the new brand's key frame and the video
//! gap each viewer saw.

use crate::media::{resize, MediaServer, Showfloor};
use crate::room::join;
use crate::rtc::{Stream, Window};
use crate::{histogram, Clock, Latency, Report, Target};
use futures_util::StreamExt;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

/// `switchover`: `viewers` on WebSocket and `subscribers` on WHEP while the host switches
/// between `brands` live brands `switches` times, one switch every `interval`.
#[derive(Debug, Clone)]
pub struct Switchover {
    pub viewers: usize,
    pub subscribers: usize,
    pub brands: usize,
    pub switches: usize,
    pub interval: Duration,
    pub stream: Stream,
}

/// A viewer's `brand_switched` events: brand id and arrival time.
type Switches = Arc<parking_lot::Mutex<Vec<(String, u64)>>>;

/// The brand id of a `brand_switched` frame (`…"brand":{"id":"b2",…`).
fn switched_to(frame: &str) -> Option<&str> {
    if !frame.starts_with("{\"type\":\"brand_switched\"") {
        return None;
    }
    let at = frame.find("\"brand\":{\"id\":\"")? + 15;
    let rest = &frame[at..];
    Some(&rest[..rest.find('"')?])
}

pub async fn switchover(
    target: &Target,
    o: &Switchover,
    show_progress: bool,
) -> anyhow::Result<Report> {
    anyhow::ensure!(o.brands >= 2, "--brands must be at least 2");
    anyhow::ensure!(o.brands <= 16, "--brands must be at most 16");
    anyhow::ensure!(o.switches >= 1, "--switches must be at least 1");
    anyhow::ensure!(
        o.viewers + o.subscribers >= 1,
        "--viewers and --subscribers cannot both be 0"
    );
    let sf = Arc::new(Showfloor::new(target, "Load test: switchover", o.brands).await?);
    let result = run_switchover(target, &sf, o, show_progress).await;
    sf.finish().await;
    result
}

async fn run_switchover(
    target: &Target,
    sf: &Arc<Showfloor>,
    o: &Switchover,
    show: bool,
) -> anyhow::Result<Report> {
    let clock = Clock::new();
    let window = Arc::new(Window::default());
    let mut publishers = Vec::new();
    for _ in 0..o.brands {
        publishers.push(sf.publish(o.stream.clone(), clock, window.clone()).await?);
    }
    // WebSocket viewers, each reading everything and noting brand switches.
    let conns = join(target, &sf.room, o.viewers, "switch-", None, show).await?;
    let mut readers = Vec::new();
    let mut seen = Vec::new();
    let mut writers = Vec::new();
    for (ws, _) in conns {
        let (tx, mut rx) = ws.split();
        let switches: Switches = Default::default();
        seen.push(switches.clone());
        writers.push(tx);
        readers.push(tokio::spawn(async move {
            while let Some(Ok(m)) = rx.next().await {
                if let Message::Text(t) = m {
                    if let Some(brand) = switched_to(t.as_str()) {
                        switches.lock().push((brand.to_string(), clock.now_us()));
                    }
                }
            }
            // The connection ended: a disconnect.
        }));
    }
    let server: Arc<dyn MediaServer> = sf.clone();
    let mut subs = Vec::new();
    resize(&server, &mut subs, o.subscribers, clock, &window, show).await?;
    // Everyone watches the first brand before the first switch.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while subs
        .iter()
        .any(|s| s.received.video.load(Ordering::Relaxed) == 0)
    {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "not every subscriber receives video before the first switch"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let bar = crate::progress(o.switches as u64, "switching", show);
    let mut switched_at = Vec::new();
    for k in 0..o.switches {
        let to = (k + 1) % o.brands;
        let t0 = clock.now_us();
        sf.switch(&sf.room.brands[to]).await?;
        switched_at.push((to, t0));
        bar.inc(1);
        tokio::time::sleep(o.interval).await;
    }
    bar.finish_and_clear();
    tokio::time::sleep(Duration::from_secs(1)).await;

    let mut ws_latency = histogram();
    let mut ws_missing = 0u64;
    let ws_disconnects = readers.iter().filter(|r| r.is_finished()).count();
    for v in &seen {
        let v = v.lock();
        for &(to, t0) in &switched_at {
            let brand = &sf.room.brands[to];
            match v.iter().find(|(b, at)| b == brand && *at >= t0) {
                Some((_, at)) => {
                    let _ = ws_latency.record((at - t0).max(1));
                }
                None => ws_missing += 1,
            }
        }
    }
    let (mut key_latency, mut gap) = (histogram(), histogram());
    let (mut media_missing, mut not_key) = (0u64, 0u64);
    for s in &subs {
        let arrivals = s.received.arrivals();
        for (k, &(to, t0)) in switched_at.iter().enumerate() {
            let until = switched_at.get(k + 1).map_or(u64::MAX, |n| n.1);
            match arrivals
                .iter()
                .find(|a| a.source as usize == to && a.first_us >= t0 && a.first_us < until)
            {
                Some(a) => {
                    let _ = key_latency.record((a.first_us - t0).max(1));
                    if let Some(last) = a.previous_last_us {
                        let _ = gap.record(a.first_us.saturating_sub(last).max(1));
                    }
                    if !a.keyframe {
                        not_key += 1;
                    }
                }
                None => media_missing += 1,
            }
        }
    }
    let media_broken =
        subs.iter().filter(|s| s.broke()).count() + publishers.iter().filter(|p| p.broke()).count();

    let mut r = Report::new("switchover");
    r.number("viewers", o.viewers);
    r.number("subscribers", o.subscribers);
    r.number("brands", o.brands);
    r.number("switches", o.switches);
    r.number("interval_ms", o.interval.as_millis() as u64);
    r.number(
        "brand_switched_ms",
        serde_json::to_value(Latency::of(&ws_latency))?,
    );
    if o.subscribers > 0 {
        r.number(
            "keyframe_after_switch_ms",
            serde_json::to_value(Latency::of(&key_latency))?,
        );
        r.number("video_gap_ms", serde_json::to_value(Latency::of(&gap))?);
    }
    r.latency = Some(Latency::of(&ws_latency));
    r.check(
        "no disconnects",
        ws_disconnects == 0 && media_broken == 0,
        format!("{ws_disconnects} WebSocket viewers and {media_broken} media connections lost"),
    );
    r.check(
        "every viewer saw every switch",
        ws_missing == 0,
        format!("{ws_missing} brand_switched events missing"),
    );
    r.check(
        "video follows every switch",
        media_missing == 0,
        format!("{media_missing} switches without the new brand's video before the next"),
    );
    r.check(
        "video resumes on a key frame",
        not_key == 0,
        format!("{not_key} switches resumed on a frame a decoder cannot start with"),
    );
    for s in subs {
        sf.unsubscribe(s).await;
    }
    for p in publishers {
        p.close().await;
    }
    drop(writers);
    for r in readers {
        r.abort();
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_brand_of_a_switch_is_read_from_the_frame() {
        let f = r#"{"type":"brand_switched","seq":46,"at":1,"brand":{"id":"b2","name":"Bravo","logo_url":"","position":1},"shelf":[]}"#;
        assert_eq!(switched_to(f), Some("b2"));
        assert_eq!(switched_to(r#"{"type":"chat","brand":{"id":"b2"}}"#), None);
    }
}
