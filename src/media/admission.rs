//! Admission of WHEP viewers by the node's load. Past what a core can forward, one more viewer
//! costs every viewer: their drivers fall behind and packets are lost for all of them (a fifth
//! of the video at 1.4× a core's capacity, BENCHMARKS.md "Admission by load"), and the
//! newcomers' own handshakes starve. So while the node is overloaded a new viewer is refused
//! at once with 503 and `Retry-After`, and the ones already watching keep their stream.
//!
//! The load is measured where it is felt: a probe asks the runtime to wake it every
//! [`PROBE_EVERY`] and records how late it ran. An idle or busy-but-keeping-up node runs it
//! within a millisecond or two; a saturated one runs it behind every queued packet. The node
//! is overloaded once [`LATE_IN_A_ROW`] probes in a row were later than the limit, and stays
//! so until none has been for [`HOLD`] — one stall (a large write, a page-in) does not shed,
//! and a herd of joiners does not see the door flap open and shut.

use prometheus_client::metrics::gauge::Gauge;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// How often the probe asks to be woken.
pub const PROBE_EVERY: Duration = Duration::from_millis(100);
/// Late probes in a row that make the node overloaded.
pub const LATE_IN_A_ROW: u32 = 2;
/// How long the node stays overloaded after its last late probe.
pub const HOLD: Duration = Duration::from_secs(2);

/// The load state the probe keeps, read by every WHEP request.
#[derive(Debug)]
pub struct Admission {
    /// `None`: viewers are admitted whatever the load (`--media-shed-lag-ms 0`).
    limit: Option<Duration>,
    start: Instant,
    /// Until when (ms since `start`, 0 = not) new viewers are refused.
    shed_until_ms: AtomicU64,
    /// The largest lateness of the last second, exported as a gauge.
    lag: Gauge<f64, AtomicU64>,
}

/// The probe's running state: pure, so the rule is tested without a clock.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Streak {
    late_in_a_row: u32,
}

impl Streak {
    /// Records one probe; true when it completes a run of late probes.
    fn record(&mut self, late: bool) -> bool {
        self.late_in_a_row = if late { self.late_in_a_row + 1 } else { 0 };
        self.late_in_a_row >= LATE_IN_A_ROW
    }
}

impl Admission {
    pub fn new(limit: Option<Duration>, lag: Gauge<f64, AtomicU64>) -> Arc<Admission> {
        Arc::new(Admission {
            limit,
            start: Instant::now(),
            shed_until_ms: AtomicU64::new(0),
            lag,
        })
    }

    fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// Whether a new viewer should be refused now.
    pub fn overloaded(&self) -> bool {
        self.now_ms() < self.shed_until_ms.load(Ordering::Relaxed)
    }

    fn late(&self, lateness: Duration) -> bool {
        self.limit.is_some_and(|l| lateness > l)
    }

    /// Runs the probe until the admission is dropped (the task holds it weakly).
    pub async fn probe(admission: Weak<Admission>) {
        let mut streak = Streak::default();
        let mut worst = Duration::ZERO;
        let mut worst_since = Instant::now();
        let mut shedding = false;
        loop {
            let due = tokio::time::Instant::now() + PROBE_EVERY;
            tokio::time::sleep_until(due).await;
            let lateness = tokio::time::Instant::now().saturating_duration_since(due);
            let Some(a) = admission.upgrade() else {
                return;
            };
            worst = worst.max(lateness);
            if worst_since.elapsed() >= Duration::from_secs(1) {
                a.lag.set(worst.as_secs_f64());
                worst = Duration::ZERO;
                worst_since = Instant::now();
            }
            if streak.record(a.late(lateness)) {
                let until = a.now_ms() + HOLD.as_millis() as u64;
                a.shed_until_ms.store(until, Ordering::Relaxed);
            }
            match (shedding, a.overloaded()) {
                (false, true) => tracing::warn!(
                    lateness_ms = lateness.as_millis() as u64,
                    "the node is overloaded: new media viewers are refused (503) until it \
                     keeps up again"
                ),
                (true, false) => tracing::info!("the node keeps up again: media viewers admitted"),
                _ => {}
            }
            shedding = a.overloaded();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_of_late_probes_sheds_one_stall_does_not() {
        let mut s = Streak::default();
        assert!(!s.record(true), "one late probe is a stall");
        assert!(!s.record(false));
        assert!(!s.record(true));
        assert!(s.record(true), "two in a row");
        assert!(s.record(true), "and every late one after");
        assert!(!s.record(false), "an on-time probe ends the run");
    }

    #[test]
    fn no_limit_never_sheds() {
        let a = Admission::new(None, Gauge::default());
        assert!(!a.late(Duration::from_secs(10)));
        let a = Admission::new(Some(Duration::from_millis(50)), Gauge::default());
        assert!(!a.late(Duration::from_millis(50)));
        assert!(a.late(Duration::from_millis(51)));
        assert!(!a.overloaded(), "not before a probe found it late");
    }
}
