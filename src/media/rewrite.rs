//! Sans-IO downtrack rewriter: maps packets of whichever source is on air to one continuous
//! output stream (SSRC, sequence number, RTP timestamp) so a viewer's decoder never sees the
//! switch. No tokio, no sockets: inputs and `now` in, decisions out.
//!
//! Rules:
//! - Sequence numbers: each time forwarding (re)starts — a new source, or a key frame after a
//!   hold — the output continues at `last output + 1`; within a run, `out = in + offset`
//!   (mod 2^16), so reordering inside a source is preserved.
//! - Timestamps: on a new source, the output continues from the last output timestamp plus
//!   the wall-clock time since that packet × the clock rate (at least 1 tick); within a
//!   source, `out = in + offset` (mod 2^32).
//! - Video is held after a switch (and after a drop) until a packet that starts a key frame;
//!   audio switches on the next packet of the new source.
//! - Packets of any other source, and packets of the current source older than the one that
//!   started the current run, are dropped.

use std::time::{Duration, Instant};

/// Identifies one ingest feed (a publisher's track for one connection); never reused.
pub type SourceId = u64;

/// What the rewriter needs to know about an incoming packet; computed once per packet.
#[derive(Debug, Clone, Copy)]
pub struct Incoming {
    pub source: SourceId,
    pub seq: u16,
    pub ts: u32,
    /// Whether the payload starts a key frame (always false for audio).
    pub keyframe: bool,
}

/// The rewritten header fields of a forwarded packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outgoing {
    pub ssrc: u32,
    pub seq: u16,
    pub ts: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Forward(Outgoing),
    /// From a source that is not (or no longer) on air.
    NotCurrent,
    /// Video waiting for a key frame of the current source.
    Held,
    /// Older than the start of the current run (reordered or duplicated across a switch).
    Stale,
}

/// The current source and how its numbering maps onto the output.
#[derive(Debug, Clone, Copy)]
struct Run {
    source: SourceId,
    /// Set once forwarding has started from this source.
    mapping: Option<Mapping>,
}

#[derive(Debug, Clone, Copy)]
struct Mapping {
    seq_offset: u16,
    ts_offset: u32,
    /// Extended input sequence number of the packet that started the current run.
    first_ext: i64,
    /// Highest extended input sequence number seen in this run.
    highest_ext: i64,
}

#[derive(Debug, Clone, Copy)]
struct Last {
    seq: u16,
    ts: u32,
    at: Instant,
}

/// One viewer's output stream of one kind (audio or video).
#[derive(Debug, Clone)]
pub struct Downtrack {
    ssrc: u32,
    clock_rate: u32,
    video: bool,
    run: Option<Run>,
    hold: bool,
    last: Option<Last>,
    /// `last` before the most recent forward, to take that forward back (`undo`).
    prev_last: Option<Last>,
    /// Output numbering before the first packet: (first seq - 1, first ts).
    origin: (u16, u32),
    forwarded: u64,
}

/// Extends a 16-bit sequence number to the one nearest `reference`.
fn extend_seq(reference: i64, seq: u16) -> i64 {
    let delta = seq.wrapping_sub(reference as u16) as i16;
    reference + delta as i64
}

impl Downtrack {
    /// `ssrc` is the viewer-side SSRC; the first sequence number and timestamp are random
    /// per RFC 3550 (callers pass them in, keeping this deterministic).
    pub fn new(ssrc: u32, clock_rate: u32, video: bool, first_seq: u16, first_ts: u32) -> Self {
        Downtrack {
            ssrc,
            clock_rate: clock_rate.max(1),
            video,
            run: None,
            hold: video,
            last: None,
            prev_last: None,
            origin: (first_seq.wrapping_sub(1), first_ts.wrapping_sub(1)),
            forwarded: 0,
        }
    }

    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    pub fn is_video(&self) -> bool {
        self.video
    }

    /// The source currently followed, if any.
    pub fn source(&self) -> Option<SourceId> {
        self.run.map(|r| r.source)
    }

    /// Whether video is waiting for a key frame.
    pub fn is_holding(&self) -> bool {
        self.hold
    }

    pub fn forwarded(&self) -> u64 {
        self.forwarded
    }

    /// Follow `source` from now on (`None`: nothing on air). A no-op if it already is the
    /// source. Video holds until that source's next key frame.
    pub fn switch_to(&mut self, source: Option<SourceId>) {
        if self.source() == source {
            return;
        }
        self.run = source.map(|source| Run {
            source,
            mapping: None,
        });
        self.hold = self.video;
    }

    /// After dropping packets (a full queue): video waits for a key frame and then continues
    /// with the next sequence number, so the viewer sees no gap it would NACK in vain.
    pub fn drop_and_hold(&mut self) {
        if self.video {
            self.hold = true;
        }
    }

    /// Decides what to do with one packet and, if forwarding, the rewritten header fields.
    pub fn rewrite(&mut self, p: &Incoming, now: Instant) -> Verdict {
        let Some(run) = self.run.as_mut() else {
            return Verdict::NotCurrent;
        };
        if run.source != p.source {
            return Verdict::NotCurrent;
        }
        if let Some(m) = run.mapping.as_mut() {
            let ext = extend_seq(m.highest_ext, p.seq);
            if ext < m.first_ext {
                return Verdict::Stale;
            }
            if self.hold {
                if !p.keyframe || ext <= m.highest_ext {
                    m.highest_ext = m.highest_ext.max(ext);
                    return Verdict::Held;
                }
                // Same source, resuming after a drop: timestamps keep their mapping,
                // sequence numbers continue from the last output.
                let last_seq = self.last.map(|l| l.seq).unwrap_or(self.origin.0);
                m.seq_offset = last_seq.wrapping_add(1).wrapping_sub(p.seq);
                m.first_ext = ext;
                self.hold = false;
            }
            m.highest_ext = m.highest_ext.max(ext);
            let out = Outgoing {
                ssrc: self.ssrc,
                seq: p.seq.wrapping_add(m.seq_offset),
                ts: p.ts.wrapping_add(m.ts_offset),
            };
            self.note(out, now);
            return Verdict::Forward(out);
        }
        // First packet of this source that could start the run.
        if self.video && !p.keyframe {
            return Verdict::Held;
        }
        let (last_seq, last_ts, elapsed) = match self.last {
            Some(l) => (l.seq, l.ts, now.saturating_duration_since(l.at)),
            None => (self.origin.0, self.origin.1, Duration::ZERO),
        };
        let gap = ((elapsed.as_micros() as u64 * self.clock_rate as u64) / 1_000_000).max(1);
        let out_seq = last_seq.wrapping_add(1);
        let out_ts = last_ts.wrapping_add(gap as u32);
        let ext = p.seq as i64;
        run.mapping = Some(Mapping {
            seq_offset: out_seq.wrapping_sub(p.seq),
            ts_offset: out_ts.wrapping_sub(p.ts),
            first_ext: ext,
            highest_ext: ext,
        });
        self.hold = false;
        let out = Outgoing {
            ssrc: self.ssrc,
            seq: out_seq,
            ts: out_ts,
        };
        self.note(out, now);
        Verdict::Forward(out)
    }

    fn note(&mut self, out: Outgoing, now: Instant) {
        // The timestamp of the newest frame, not of a late retransmission.
        let newer = match self.last {
            Some(l) => (out.seq.wrapping_sub(l.seq) as i16) > 0,
            None => true,
        };
        if newer {
            self.prev_last = self.last;
            self.last = Some(Last {
                seq: out.seq,
                ts: out.ts,
                at: now,
            });
        }
        self.forwarded += 1;
    }

    /// The packet just forwarded as `out` could not be sent (the viewer's queue was full):
    /// take it back so numbering stays gapless. Video then waits for a key frame; audio
    /// gives the dropped packet's sequence number to the next one.
    pub fn undo(&mut self, out: Outgoing) {
        if self.last.is_some_and(|l| l.seq == out.seq) {
            self.last = self.prev_last.take();
        }
        self.forwarded = self.forwarded.saturating_sub(1);
        if self.video {
            self.hold = true;
        } else if let Some(m) = self.run.as_mut().and_then(|r| r.mapping.as_mut()) {
            m.seq_offset = m.seq_offset.wrapping_sub(1);
        }
    }

    /// Maps the RTP timestamp of a sender report of `source` onto the output timeline, so a
    /// report relayed for this downtrack agrees with the rewritten packets. `None` when the
    /// source is not the one forwarded or has not started.
    pub fn map_report_ts(&self, source: SourceId, rtp_ts: u32) -> Option<u32> {
        let run = self.run?;
        if run.source != source {
            return None;
        }
        run.mapping.map(|m| rtp_ts.wrapping_add(m.ts_offset))
    }

    /// Last output sequence number and timestamp (for tests and stats).
    pub fn last_out(&self) -> Option<(u16, u32)> {
        self.last.map(|l| (l.seq, l.ts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: SourceId = 1;
    const B: SourceId = 2;

    fn pkt(source: SourceId, seq: u16, ts: u32, keyframe: bool) -> Incoming {
        Incoming {
            source,
            seq,
            ts,
            keyframe,
        }
    }

    fn fwd(v: Verdict) -> Outgoing {
        match v {
            Verdict::Forward(o) => o,
            other => panic!("expected a forward, got {other:?}"),
        }
    }

    #[test]
    fn video_waits_for_a_key_frame_then_maps_continuously() {
        let t0 = Instant::now();
        let mut d = Downtrack::new(0xabc, 90_000, true, 1000, 5000);
        d.switch_to(Some(A));
        assert_eq!(d.rewrite(&pkt(A, 7, 100, false), t0), Verdict::Held);
        let o = fwd(d.rewrite(&pkt(A, 8, 3100, true), t0));
        assert_eq!((o.ssrc, o.seq, o.ts), (0xabc, 1000, 5000));
        let o = fwd(d.rewrite(&pkt(A, 9, 3100, false), t0));
        assert_eq!((o.seq, o.ts), (1001, 5000));
        let o = fwd(d.rewrite(&pkt(A, 10, 6100, false), t0));
        assert_eq!((o.seq, o.ts), (1002, 8000));
        // Before the start of the run: stale.
        assert_eq!(d.rewrite(&pkt(A, 7, 100, false), t0), Verdict::Stale);
        // Another source is not forwarded.
        assert_eq!(d.rewrite(&pkt(B, 10, 6100, true), t0), Verdict::NotCurrent);
    }

    #[test]
    fn switch_continues_seq_and_ts_from_wall_clock() {
        let t0 = Instant::now();
        let mut d = Downtrack::new(1, 90_000, true, 500, 10_000);
        d.switch_to(Some(A));
        fwd(d.rewrite(&pkt(A, 100, 1_000, true), t0));
        let last = fwd(d.rewrite(&pkt(A, 101, 4_000, false), t0));
        d.switch_to(Some(B));
        assert!(d.is_holding());
        // Late and duplicate packets of A after the switch are dropped.
        assert_eq!(
            d.rewrite(&pkt(A, 102, 7_000, false), t0),
            Verdict::NotCurrent
        );
        assert_eq!(
            d.rewrite(&pkt(A, 101, 4_000, false), t0),
            Verdict::NotCurrent
        );
        // B's delta frames are held, its key frame starts the run 100 ms later.
        let t1 = t0 + Duration::from_millis(100);
        assert_eq!(d.rewrite(&pkt(B, 60_000, 77, false), t1), Verdict::Held);
        let o = fwd(d.rewrite(&pkt(B, 60_001, 3_077, true), t1));
        assert_eq!(o.seq, last.seq.wrapping_add(1));
        assert_eq!(o.ts, last.ts + 9_000);
        let o2 = fwd(d.rewrite(&pkt(B, 60_002, 6_077, false), t1));
        assert_eq!(o2.seq, o.seq.wrapping_add(1));
        assert_eq!(o2.ts, o.ts + 3_000);
        // B's own packets from before its key frame are stale now.
        assert_eq!(d.rewrite(&pkt(B, 60_000, 77, false), t1), Verdict::Stale);
    }

    #[test]
    fn sequence_and_timestamp_wrap_around() {
        let t0 = Instant::now();
        let mut d = Downtrack::new(1, 48_000, false, 65_534, u32::MAX - 960);
        d.switch_to(Some(A));
        let mut outs = Vec::new();
        // Input also wraps, in both fields.
        for i in 0..6u16 {
            let seq = 65_533u16.wrapping_add(i);
            let ts = (u32::MAX - 1_000).wrapping_add(960 * i as u32);
            outs.push(fwd(d.rewrite(&pkt(A, seq, ts, false), t0)));
        }
        for w in outs.windows(2) {
            assert_eq!(w[1].seq, w[0].seq.wrapping_add(1));
            assert_eq!(w[1].ts, w[0].ts.wrapping_add(960));
        }
        assert_eq!(outs[0].seq, 65_534);
        assert_eq!(outs[2].seq, 0);
        // A reordered packet across the input wrap still maps into place.
        let late = fwd(d.rewrite(
            &pkt(A, 65_535, (u32::MAX - 1_000).wrapping_add(1_920), false),
            t0,
        ));
        assert_eq!(late.seq, outs[2].seq);
        // And the run start is still recognised across the wrap.
        assert_eq!(d.rewrite(&pkt(A, 65_532, 0, false), t0), Verdict::Stale);
    }

    #[test]
    fn audio_switches_on_the_next_packet() {
        let t0 = Instant::now();
        let mut d = Downtrack::new(9, 48_000, false, 10, 0);
        d.switch_to(Some(A));
        fwd(d.rewrite(&pkt(A, 1, 960, false), t0));
        let last = fwd(d.rewrite(&pkt(A, 2, 1_920, false), t0));
        d.switch_to(Some(B));
        assert!(!d.is_holding());
        let t1 = t0 + Duration::from_millis(20);
        let o = fwd(d.rewrite(&pkt(B, 40_000, 123_456, false), t1));
        assert_eq!(o.seq, last.seq + 1);
        assert_eq!(o.ts, last.ts + 960);
    }

    #[test]
    fn switching_back_and_forth_stays_continuous() {
        let mut now = Instant::now();
        let mut d = Downtrack::new(1, 90_000, true, 0, 0);
        let mut prev: Option<Outgoing> = None;
        let mut seqs = [1000u16, 50_000u16];
        let mut tss = [0u32, 2_000_000_000u32];
        for round in 0..20 {
            let (src, i) = if round % 2 == 0 { (A, 0) } else { (B, 1) };
            d.switch_to(Some(src));
            for k in 0..30 {
                now += Duration::from_millis(33);
                seqs[i] = seqs[i].wrapping_add(1);
                tss[i] = tss[i].wrapping_add(3_000);
                let v = d.rewrite(&pkt(src, seqs[i], tss[i], k == 3), now);
                if k < 3 {
                    assert_eq!(v, Verdict::Held, "round {round} k {k}");
                    continue;
                }
                let o = fwd(v);
                if let Some(p) = prev {
                    assert_eq!(o.seq, p.seq.wrapping_add(1), "round {round} k {k}");
                    assert!(
                        (o.ts.wrapping_sub(p.ts) as i32) > 0,
                        "timestamps move forward"
                    );
                }
                prev = Some(o);
            }
        }
    }

    #[test]
    fn drop_and_hold_resumes_without_a_sequence_gap() {
        let t0 = Instant::now();
        let mut d = Downtrack::new(1, 90_000, true, 0, 0);
        d.switch_to(Some(A));
        fwd(d.rewrite(&pkt(A, 10, 0, true), t0));
        let last = fwd(d.rewrite(&pkt(A, 11, 3_000, false), t0));
        d.drop_and_hold();
        assert_eq!(d.rewrite(&pkt(A, 12, 6_000, false), t0), Verdict::Held);
        assert_eq!(d.rewrite(&pkt(A, 13, 9_000, false), t0), Verdict::Held);
        let o = fwd(d.rewrite(&pkt(A, 14, 12_000, true), t0));
        assert_eq!(o.seq, last.seq + 1);
        // Same source: the timestamp mapping is kept (real elapsed media time).
        assert_eq!(o.ts, last.ts + 9_000);
        // A held packet arriving late is before the new run.
        assert_eq!(d.rewrite(&pkt(A, 13, 9_000, false), t0), Verdict::Stale);
    }

    #[test]
    fn undo_keeps_numbering_gapless() {
        let t0 = Instant::now();
        // Video: the undone packet's number is reused after the key-frame hold.
        let mut d = Downtrack::new(1, 90_000, true, 100, 0);
        d.switch_to(Some(A));
        fwd(d.rewrite(&pkt(A, 1, 0, true), t0));
        let lost = fwd(d.rewrite(&pkt(A, 2, 3_000, false), t0));
        d.undo(lost);
        assert!(d.is_holding());
        assert_eq!(d.rewrite(&pkt(A, 3, 6_000, false), t0), Verdict::Held);
        assert_eq!(fwd(d.rewrite(&pkt(A, 4, 9_000, true), t0)).seq, lost.seq);
        // Audio: the next packet takes the undone one's number.
        let mut d = Downtrack::new(1, 48_000, false, 100, 0);
        d.switch_to(Some(A));
        fwd(d.rewrite(&pkt(A, 1, 0, false), t0));
        let lost = fwd(d.rewrite(&pkt(A, 2, 960, false), t0));
        d.undo(lost);
        let next = fwd(d.rewrite(&pkt(A, 3, 1_920, false), t0));
        assert_eq!(next.seq, lost.seq);
        assert_eq!(next.ts, lost.ts + 960);
        assert_eq!(
            fwd(d.rewrite(&pkt(A, 4, 2_880, false), t0)).seq,
            lost.seq + 1
        );
    }

    #[test]
    fn nothing_on_air_forwards_nothing() {
        let mut d = Downtrack::new(1, 48_000, false, 0, 0);
        assert_eq!(
            d.rewrite(&pkt(A, 1, 1, false), Instant::now()),
            Verdict::NotCurrent
        );
        d.switch_to(Some(A));
        d.switch_to(None);
        assert_eq!(d.source(), None);
        assert_eq!(
            d.rewrite(&pkt(A, 1, 1, false), Instant::now()),
            Verdict::NotCurrent
        );
    }

    #[test]
    fn sender_report_timestamps_follow_the_mapping() {
        let t0 = Instant::now();
        let mut d = Downtrack::new(1, 90_000, true, 0, 7_000);
        d.switch_to(Some(A));
        assert_eq!(d.map_report_ts(A, 1_000), None);
        let o = fwd(d.rewrite(&pkt(A, 5, 1_000, true), t0));
        assert_eq!(d.map_report_ts(A, 1_000), Some(o.ts));
        assert_eq!(d.map_report_ts(A, 91_000), Some(o.ts.wrapping_add(90_000)));
        assert_eq!(d.map_report_ts(B, 1_000), None);
    }
}
