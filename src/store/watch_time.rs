//! Watch time per viewer, folded from a room's audience log (the same for every backend).

use crate::model::AudienceKind;
use std::collections::HashMap;

/// Folds an audience log into watch time per viewer. Feed it one viewer's records at a time,
/// oldest first (the log ordered by viewer, then time). A session runs from its join to its
/// leave; a session cut off without a leave (a crash) ends at its last heartbeat, and a join
/// of a session id that is still open (ids restart with the process) closes the old one
/// there. A viewer's overlapping sessions (two tabs) count once.
#[derive(Debug, Default)]
pub struct WatchTime {
    viewer: Option<String>,
    /// Open sessions of the current viewer: session id -> (joined, last seen).
    open: HashMap<u64, (i64, i64)>,
    /// Finished intervals of the current viewer.
    spans: Vec<(i64, i64)>,
    done: Vec<(String, i64)>,
}

impl WatchTime {
    pub fn add(&mut self, viewer_id: &str, session: u64, kind: AudienceKind, at_ms: i64) {
        if self.viewer.as_deref() != Some(viewer_id) {
            self.finish_viewer();
            self.viewer = Some(viewer_id.to_string());
        }
        match kind {
            AudienceKind::Join => {
                if let Some(span) = self.open.insert(session, (at_ms, at_ms)) {
                    self.spans.push(span);
                }
            }
            AudienceKind::Heartbeat => {
                if let Some((_, last)) = self.open.get_mut(&session) {
                    *last = (*last).max(at_ms);
                }
            }
            AudienceKind::Leave => {
                if let Some((joined, last)) = self.open.remove(&session) {
                    self.spans.push((joined, last.max(at_ms)));
                }
            }
        }
    }

    fn finish_viewer(&mut self) {
        let Some(viewer) = self.viewer.take() else {
            return;
        };
        self.spans.extend(self.open.drain().map(|(_, span)| span));
        self.spans.sort_unstable();
        let (mut total, mut covered_to) = (0i64, i64::MIN);
        for &(start, end) in &self.spans {
            let start = start.max(covered_to);
            if end > start {
                total += end - start;
                covered_to = end;
            }
        }
        self.spans.clear();
        if total > 0 {
            self.done.push((viewer, total));
        }
    }

    /// (viewer id, watched ms) for every viewer who watched at all.
    pub fn finish(mut self) -> Vec<(String, i64)> {
        self.finish_viewer();
        self.done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use AudienceKind::*;

    fn fold(log: &[(&str, u64, AudienceKind, i64)]) -> Vec<(String, i64)> {
        let mut w = WatchTime::default();
        for &(v, s, k, t) in log {
            w.add(v, s, k, t);
        }
        w.finish()
    }

    #[test]
    fn sessions_sum_and_overlaps_count_once() {
        let got = fold(&[
            ("a", 1, Join, 0),
            ("a", 2, Join, 500),
            ("a", 1, Leave, 1_000),
            ("a", 3, Join, 5_000),
            ("a", 2, Leave, 1_500),
            ("a", 3, Leave, 6_000),
            ("b", 4, Join, 100),
            ("b", 4, Leave, 100),
        ]);
        // a: 0..1500 (two overlapping tabs) + 5000..6000; b joined and left at once.
        assert_eq!(got, vec![("a".into(), 2_500)]);
    }

    #[test]
    fn a_session_cut_off_by_a_crash_ends_at_its_last_heartbeat() {
        let got = fold(&[
            ("a", 1, Join, 0),
            ("a", 1, Heartbeat, 60_000),
            ("a", 1, Heartbeat, 120_000),
            // The process died; after the restart session ids start again.
            ("a", 1, Join, 200_000),
            ("a", 1, Heartbeat, 260_000),
            ("b", 1, Join, 0),
        ]);
        assert_eq!(got, vec![("a".into(), 180_000)]);
    }
}
