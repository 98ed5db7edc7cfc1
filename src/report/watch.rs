//! Who watched when: each viewer's sessions from the audience log merged into spans (tabs and
//! reconnects count once), the per-minute concurrency curve and the running order's segments.

use crate::model::{AudienceKind, AudienceRecord, ProgramRecord};
// Keyed by viewer ids on every record of a big log: foldhash, as in the room.
use foldhash::{HashMap, HashMapExt};

/// A viewer's watching as disjoint spans `[start, end)`, oldest first, clipped to the show.
pub(super) type Spans = Vec<(i64, i64)>;

/// The show's interval and how to read sessions that have no leave.
#[derive(Debug, Clone, Copy)]
pub(super) struct Window {
    pub start: i64,
    pub end: i64,
    /// Whether the room is still live (an open session may still be watching at `end`).
    pub live: bool,
    /// A session seen within this long before `end` is taken as still watching when live.
    pub stale_ms: i64,
}

/// Each viewer's merged spans. A session runs from its join to its leave; one without a
/// leave ends at its last heartbeat (a crash), or at `end` if the room is live and it was
/// seen lately; a join of a session id still open (ids restart with the process) closes
/// the old one at its last sign of life.
pub(super) fn viewer_spans(log: &[AudienceRecord], w: Window) -> HashMap<&str, Spans> {
    // The log is oldest first; grouping keeps each viewer's records in that order.
    let mut by_viewer: HashMap<&str, Vec<&AudienceRecord>> = HashMap::new();
    for r in log {
        by_viewer.entry(r.viewer_id.as_str()).or_default().push(r);
    }
    let mut out = HashMap::with_capacity(by_viewer.len());
    let mut open: HashMap<u64, (i64, i64)> = HashMap::new();
    for (viewer, records) in by_viewer {
        open.clear();
        let mut spans: Spans = Vec::new();
        for r in records {
            match r.kind {
                AudienceKind::Join => {
                    if let Some(old) = open.insert(r.session, (r.at_ms, r.at_ms)) {
                        spans.push(old);
                    }
                }
                AudienceKind::Heartbeat => {
                    if let Some((_, last)) = open.get_mut(&r.session) {
                        *last = (*last).max(r.at_ms);
                    }
                }
                AudienceKind::Leave => {
                    if let Some((joined, last)) = open.remove(&r.session) {
                        spans.push((joined, last.max(r.at_ms)));
                    }
                }
            }
        }
        for (_, (joined, last)) in open.drain() {
            let still = w.live && w.end - last <= w.stale_ms;
            spans.push((joined, if still { w.end } else { last }));
        }
        let merged = merge(spans, w.start, w.end);
        if !merged.is_empty() {
            out.insert(viewer, merged);
        }
    }
    out
}

/// Sorts, clips to `[start, end)` and unites overlapping spans; empty ones go.
fn merge(mut spans: Spans, start: i64, end: i64) -> Spans {
    spans.sort_unstable();
    let mut out: Spans = Vec::with_capacity(spans.len());
    for (s, e) in spans {
        let (s, e) = (s.max(start), e.min(end));
        if e <= s {
            continue;
        }
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

pub(super) fn total(spans: &Spans) -> i64 {
    spans.iter().map(|(s, e)| e - s).sum()
}

/// How much of `spans` falls in `[start, end)`.
pub(super) fn overlap(spans: &Spans, start: i64, end: i64) -> i64 {
    spans
        .iter()
        .map(|&(s, e)| (e.min(end) - s.max(start)).max(0))
        .sum()
}

/// The most viewers watching at once in each minute of `[start, end)` (the last minute may
/// be shorter), from every viewer's spans.
pub(super) fn concurrency_curve<'a>(
    spans: impl Iterator<Item = &'a Spans>,
    start: i64,
    end: i64,
) -> Vec<u32> {
    let minutes = ((end - start).max(0) + 59_999) / 60_000;
    let mut curve = vec![0u32; minutes as usize];
    // A leave sorts before a join at the same instant: two viewers handing over are never
    // counted as two at once.
    let mut edges: Vec<(i64, i32)> = Vec::new();
    for s in spans {
        for &(a, b) in s {
            edges.push((a, 1));
            edges.push((b, -1));
        }
    }
    edges.sort_unstable();
    let minute_start = |m: usize| start + m as i64 * 60_000;
    let mut level: i64 = 0;
    // The last minute the level carried so far was recorded in.
    let mut minute = 0usize;
    let mut i = 0;
    while i < edges.len() {
        let at = edges[i].0;
        let m = ((at - start).max(0) / 60_000) as usize;
        // The level held since the previous instant covers every minute that starts before
        // this one (a minute starting exactly now sees only what holds from now on).
        while minute < m && minute < curve.len() {
            minute += 1;
            if minute_start(minute) < at {
                if let Some(c) = curve.get_mut(minute) {
                    *c = (*c).max(level as u32);
                }
            }
        }
        // Every edge at this instant, then the level that holds from it.
        while i < edges.len() && edges[i].0 == at {
            level += i64::from(edges[i].1);
            i += 1;
        }
        if let Some(c) = curve.get_mut(m) {
            *c = (*c).max(level as u32);
        }
    }
    curve
}

/// A stretch of the show with one brand on air.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Segment {
    pub brand_id: String,
    pub start: i64,
    pub end: i64,
}

/// The running order's segments within `[start, end)`, from the log of brands on air. A room
/// without a log (recorded before it existed) has one segment of the brand on air, if any.
pub(super) fn segments(
    program: &[ProgramRecord],
    brand_on_air: Option<&str>,
    start: i64,
    end: i64,
) -> Vec<Segment> {
    if program.is_empty() {
        return brand_on_air
            .filter(|_| end > start)
            .map(|b| Segment {
                brand_id: b.to_string(),
                start,
                end,
            })
            .into_iter()
            .collect();
    }
    let mut out = Vec::new();
    for (i, p) in program.iter().enumerate() {
        let Some(brand) = &p.brand_id else { continue };
        let next = program.get(i + 1).map_or(end, |n| n.at_ms);
        let (s, e) = (p.at_ms.max(start), next.min(end));
        if e > s {
            out.push(Segment {
                brand_id: brand.clone(),
                start: s,
                end: e,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(v: &str, session: u64, kind: AudienceKind, at_ms: i64) -> AudienceRecord {
        AudienceRecord {
            viewer_id: v.into(),
            session,
            kind,
            inviter_id: None,
            tier: None,
            at_ms,
        }
    }

    const W: Window = Window {
        start: 0,
        end: 600_000,
        live: true,
        stale_ms: 90_000,
    };

    #[test]
    fn tabs_and_reconnects_count_once_and_open_sessions_follow_the_room() {
        use AudienceKind::*;
        let log = vec![
            rec("a", 1, Join, 0),
            rec("a", 2, Join, 30_000),
            rec("a", 1, Leave, 60_000),
            rec("a", 2, Leave, 90_000),
            rec("a", 3, Join, 120_000),
            rec("a", 3, Leave, 180_000),
            // b is still connected (seen lately): watches to the end.
            rec("b", 4, Join, 500_000),
            rec("b", 4, Heartbeat, 560_000),
            // c crashed long ago: its session ends at its last heartbeat.
            rec("c", 5, Join, 100_000),
            rec("c", 5, Heartbeat, 160_000),
        ];
        let spans = viewer_spans(&log, W);
        assert_eq!(spans["a"], vec![(0, 90_000), (120_000, 180_000)]);
        assert_eq!(spans["b"], vec![(500_000, 600_000)]);
        assert_eq!(spans["c"], vec![(100_000, 160_000)]);
        let curve = concurrency_curve(spans.values(), 0, 600_000);
        // a leaves at 3:00 sharp: minute 3 starts empty.
        assert_eq!(curve, vec![1, 1, 2, 0, 0, 0, 0, 0, 1, 1]);
    }

    #[test]
    fn segments_follow_the_program_log_and_the_show() {
        let p = |b: Option<&str>, at| ProgramRecord {
            brand_id: b.map(String::from),
            at_ms: at,
        };
        let log = [
            p(Some("b1"), -5),
            p(Some("b2"), 100),
            p(None, 200),
            p(Some("b1"), 300),
        ];
        let got = segments(&log, Some("b1"), 0, 400);
        let seg = |b: &str, s, e| Segment {
            brand_id: b.into(),
            start: s,
            end: e,
        };
        assert_eq!(
            got,
            vec![seg("b1", 0, 100), seg("b2", 100, 200), seg("b1", 300, 400)]
        );
        assert_eq!(segments(&[], Some("b9"), 0, 50), vec![seg("b9", 0, 50)]);
    }
}
