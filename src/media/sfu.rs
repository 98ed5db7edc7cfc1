//! The forwarding hot path: one ingested RTP packet → every subscriber of the room's program,
//! rewritten per viewer and handed to its egress without waiting (one that cannot take it
//! drops it and asks for a key frame; nobody waits). Synchronous: locks here are short and
//! never held across `.await`.

use super::keyframe::VideoCodec;
use super::rewrite::{Downtrack, Incoming, SourceId, Verdict};
use parking_lot::Mutex;
use rtc::rtp;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::time::Instant;
use tokio::sync::mpsc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaKind {
    Audio,
    Video,
}

/// Where a subscriber's rewritten packets go: its PeerConnection's tracks (`subscribe.rs`),
/// or a queue that tests and benchmarks read.
pub trait Egress: Send + Sync {
    /// Takes `packet` now, without waiting; `false`: not taken (the viewer is behind or gone).
    fn offer(&self, kind: MediaKind, packet: rtp::Packet) -> bool;
}

/// One packet in an [`Egress`] queue.
pub struct Outbound {
    pub kind: MediaKind,
    pub packet: rtp::Packet,
}

impl Egress for mpsc::Sender<Outbound> {
    fn offer(&self, kind: MediaKind, packet: rtp::Packet) -> bool {
        self.try_send(Outbound { kind, packet }).is_ok()
    }
}

/// Payload types the viewer's leg negotiated for each codec (0 = not negotiated).
#[derive(Debug, Default)]
pub struct PayloadTypes {
    pub opus: AtomicU8,
    pub vp8: AtomicU8,
    pub h264: AtomicU8,
}

impl PayloadTypes {
    pub fn video(&self, codec: VideoCodec) -> u8 {
        match codec {
            VideoCodec::Vp8 => self.vp8.load(Ordering::Relaxed),
            VideoCodec::H264 => self.h264.load(Ordering::Relaxed),
        }
    }
}

/// One viewer of a room's program.
pub struct Subscriber {
    pub id: u64,
    pub audio: Mutex<Downtrack>,
    pub video: Mutex<Downtrack>,
    pub payload_types: PayloadTypes,
    pub egress: Box<dyn Egress>,
    pub dropped: AtomicU64,
}

impl Subscriber {
    pub fn downtrack(&self, kind: MediaKind) -> &Mutex<Downtrack> {
        match kind {
            MediaKind::Audio => &self.audio,
            MediaKind::Video => &self.video,
        }
    }

    /// Follow a new program source per kind (`None`: nothing on air of that kind).
    pub fn switch_to(&self, audio: Option<SourceId>, video: Option<SourceId>) {
        self.audio.lock().switch_to(audio);
        self.video.lock().switch_to(video);
    }
}

/// What one packet's fan-out did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FanOut {
    pub forwarded: usize,
    pub dropped: usize,
    /// Some subscriber waits for a key frame of this source (ask for one, throttled).
    pub wants_keyframe: bool,
}

/// Codec facts of the packet's source, resolved once per packet.
#[derive(Debug, Clone, Copy)]
pub struct SourceCodec {
    pub kind: MediaKind,
    /// `None` for audio (Opus).
    pub video: Option<VideoCodec>,
}

/// Forwards `packet` (already classified as `incoming`) to each subscriber.
pub fn forward(
    subscribers: &[std::sync::Arc<Subscriber>],
    codec: SourceCodec,
    packet: &rtp::Packet,
    incoming: &Incoming,
    now: Instant,
) -> FanOut {
    let mut out = FanOut::default();
    for s in subscribers {
        let pt = match codec.video {
            Some(v) => s.payload_types.video(v),
            None => s.payload_types.opus.load(Ordering::Relaxed),
        };
        if pt == 0 {
            // This viewer's leg cannot carry the codec.
            continue;
        }
        let dt = s.downtrack(codec.kind);
        let verdict = dt.lock().rewrite(incoming, now);
        match verdict {
            Verdict::Forward(o) => {
                let p = rtp::Packet {
                    header: rtp::Header {
                        version: 2,
                        marker: packet.header.marker,
                        payload_type: pt,
                        sequence_number: o.seq,
                        timestamp: o.ts,
                        ssrc: o.ssrc,
                        ..Default::default()
                    },
                    payload: packet.payload.clone(),
                };
                match s.egress.offer(codec.kind, p) {
                    true => out.forwarded += 1,
                    false => {
                        s.dropped.fetch_add(1, Ordering::Relaxed);
                        out.dropped += 1;
                        // Numbering stays gapless; video waits for a key frame.
                        dt.lock().undo(o);
                        out.wants_keyframe |= codec.kind == MediaKind::Video;
                    }
                }
            }
            Verdict::Held => out.wants_keyframe = true,
            Verdict::NotCurrent | Verdict::Stale => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn packet(seq: u16, ts: u32) -> rtp::Packet {
        rtp::Packet {
            header: rtp::Header {
                version: 2,
                payload_type: 100,
                sequence_number: seq,
                timestamp: ts,
                ssrc: 42,
                ..Default::default()
            },
            payload: bytes::Bytes::from_static(&[0x10, 0x00, 0x9d]),
        }
    }

    fn incoming(seq: u16, ts: u32, keyframe: bool) -> Incoming {
        Incoming {
            source: 7,
            seq,
            ts,
            keyframe,
        }
    }

    #[test]
    fn a_full_queue_drops_holds_and_asks_for_a_key_frame() {
        let (tx, mut rx) = mpsc::channel(1);
        let s = Arc::new(Subscriber {
            id: 1,
            audio: Mutex::new(Downtrack::new(1, 48_000, false, 0, 0)),
            video: Mutex::new(Downtrack::new(2, 90_000, true, 500, 0)),
            payload_types: PayloadTypes::default(),
            egress: Box::new(tx),
            dropped: AtomicU64::new(0),
        });
        s.payload_types.vp8.store(96, Ordering::Relaxed);
        s.switch_to(None, Some(7));
        let subs = vec![s.clone()];
        let codec = SourceCodec {
            kind: MediaKind::Video,
            video: Some(VideoCodec::Vp8),
        };
        let now = Instant::now();
        // Held until a key frame; the source is asked for one.
        let f = forward(&subs, codec, &packet(9, 0), &incoming(9, 0, false), now);
        assert_eq!((f.forwarded, f.wants_keyframe), (0, true));
        let f = forward(&subs, codec, &packet(10, 0), &incoming(10, 0, true), now);
        assert_eq!(f.forwarded, 1);
        // The queue (capacity 1) is full: dropped, held, key frame wanted.
        let f = forward(
            &subs,
            codec,
            &packet(11, 3000),
            &incoming(11, 3000, false),
            now,
        );
        assert_eq!((f.dropped, f.wants_keyframe), (1, true));
        assert!(s.video.lock().is_holding());
        let first = rx.try_recv().unwrap().packet;
        assert_eq!(first.header.payload_type, 96, "the viewer's payload type");
        assert_eq!(first.header.ssrc, 2, "the viewer's SSRC");
        assert_eq!(first.header.sequence_number, 500);
        // Delta frames stay held even with room in the queue; the next key frame resumes
        // with the next sequence number.
        let f = forward(
            &subs,
            codec,
            &packet(12, 6000),
            &incoming(12, 6000, false),
            now,
        );
        assert_eq!(f.forwarded, 0);
        let f = forward(
            &subs,
            codec,
            &packet(13, 9000),
            &incoming(13, 9000, true),
            now,
        );
        assert_eq!(f.forwarded, 1);
        let next = rx.try_recv().unwrap().packet;
        assert_eq!(next.header.sequence_number, 501);
        assert_eq!(s.dropped.load(Ordering::Relaxed), 1);
        // A viewer whose leg lacks the codec is skipped.
        s.payload_types.vp8.store(0, Ordering::Relaxed);
        let f = forward(
            &subs,
            codec,
            &packet(14, 9000),
            &incoming(14, 9000, false),
            now,
        );
        assert_eq!(f, FanOut::default());
    }
}
