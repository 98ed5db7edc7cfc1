//! A limit on repeated warnings from the libraries under the server. webrtc's crates warn once
//! per packet or per connection about things that are routine for an SFU (a duplicated SRTP
//! packet after a retransmission, a DTLS config without a server name): on an overloaded node
//! they wrote 22,000 lines a minute, costing CPU where it was shortest and burying the lines
//! that mattered. So each place in a library that warns (or errors) may log
//! [`PER_WINDOW`] lines per [`WINDOW`]; what it had to say beyond that is counted and reported
//! in one line per place when the window is over ([`RepeatLimit::take_suppressed`]). The
//! server's own lines (target `showfloor…`) and anything below WARN are never limited.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tracing::{Level, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::layer::{Context, Layer};

/// Lines one place may log per window.
pub const PER_WINDOW: u32 = 10;
/// The window, and how often suppressed lines are reported.
pub const WINDOW: Duration = Duration::from_secs(60);

/// Where a line comes from: its target, level and `file:line` (for a `log` record, the
/// record's own — every record bridged from `log` shares one tracing callsite per level).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    pub target: String,
    pub level: Level,
    pub place: String,
}

impl Origin {
    pub fn new(target: &str, level: Level, file: Option<&str>, line: Option<u32>) -> Origin {
        Origin {
            target: target.to_string(),
            level,
            place: match (file, line) {
                (Some(f), Some(l)) => format!("{f}:{l}"),
                (Some(f), None) => f.to_string(),
                _ => String::new(),
            },
        }
    }
}

#[derive(Debug)]
struct Count {
    window_start: Instant,
    in_window: u32,
    suppressed: u64,
}

/// The counts per place; shared by the layer and whoever reports the suppressed lines.
#[derive(Debug, Default)]
pub struct RepeatLimit {
    places: Mutex<HashMap<Origin, Count>>,
}

/// Whether lines at `level` from `target` are limited at all.
fn limited(target: &str, level: Level) -> bool {
    level <= Level::WARN && !target.starts_with("showfloor")
}

impl RepeatLimit {
    /// Whether a line from `origin` is logged now.
    pub fn admit(&self, origin: Origin, now: Instant) -> bool {
        let mut places = self.places.lock();
        let count = places.entry(origin).or_insert(Count {
            window_start: now,
            in_window: 0,
            suppressed: 0,
        });
        if now.duration_since(count.window_start) >= WINDOW {
            count.window_start = now;
            count.in_window = 0;
        }
        if count.in_window < PER_WINDOW {
            count.in_window += 1;
            true
        } else {
            count.suppressed += 1;
            false
        }
    }

    /// The places that had lines suppressed since the last call, with how many, most first.
    pub fn take_suppressed(&self) -> Vec<(Origin, u64)> {
        let mut places = self.places.lock();
        let mut out: Vec<(Origin, u64)> = places
            .iter_mut()
            .filter(|(_, c)| c.suppressed > 0)
            .map(|(o, c)| (o.clone(), std::mem::take(&mut c.suppressed)))
            .collect();
        out.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
        out
    }
}

/// The limit as a layer: an event it does not admit is logged by no layer.
pub struct RepeatLimitLayer(pub std::sync::Arc<RepeatLimit>);

impl<S: Subscriber> Layer<S> for RepeatLimitLayer {
    fn event_enabled(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) -> bool {
        let meta = event.metadata();
        if !limited(meta.target(), *meta.level()) {
            return true;
        }
        let normalized = event.normalized_metadata();
        let meta = normalized.as_ref().unwrap_or(meta);
        let origin = Origin::new(meta.target(), *meta.level(), meta.file(), meta.line());
        self.0.admit(origin, Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(target: &str, line: u32) -> Origin {
        Origin::new(target, Level::WARN, Some("src/x.rs"), Some(line))
    }

    #[test]
    fn a_library_place_logs_its_quota_per_window_and_the_rest_is_counted() {
        let limit = RepeatLimit::default();
        let srtp = origin("rtc::peer_connection::handler", 298);
        let t0 = Instant::now();
        let admitted = (0..25).filter(|_| limit.admit(srtp.clone(), t0)).count();
        assert_eq!(admitted, PER_WINDOW as usize);
        assert!(
            limit.admit(origin("rtc::peer_connection::handler", 267), t0),
            "another line of the same target has its own quota"
        );
        assert!(limit.admit(origin("rtc_dtls::config", 298), t0));
        let s = limit.take_suppressed();
        assert_eq!(s, vec![(srtp.clone(), 25 - u64::from(PER_WINDOW))]);
        assert_eq!(s[0].0.place, "src/x.rs:298");
        assert!(limit.take_suppressed().is_empty(), "counted once");
        assert!(
            !limit.admit(srtp.clone(), t0 + WINDOW / 2),
            "still the same window"
        );
        assert!(limit.admit(srtp, t0 + WINDOW), "a new window");
    }

    #[test]
    fn our_own_lines_and_info_are_never_limited() {
        assert!(!limited("showfloor::media", Level::WARN));
        assert!(!limited("showfloor", Level::ERROR));
        assert!(!limited("rtc_ice::agent", Level::INFO));
        assert!(limited("rtc_ice::agent", Level::WARN));
        assert!(limited("rtc_dtls::handshaker", Level::ERROR));
    }
}
