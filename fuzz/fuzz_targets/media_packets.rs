//! Fuzz: any datagram or payload a media peer can send — STUN routing, SDP candidate
//! rewriting, the offer's DTLS role and PATCH edits, key-frame detection, the downtrack
//! rewriter — must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use showfloor::media::keyframe::{starts_keyframe, VideoCodec};
use showfloor::media::rewrite::{Downtrack, Incoming, Verdict};
use showfloor::media::{sdp, stun};
use std::time::{Duration, Instant};

fuzz_target!(|data: &[u8]| {
    let _ = stun::binding_request_ufrag(data);
    let _ = starts_keyframe(VideoCodec::Vp8, data);
    let _ = starts_keyframe(VideoCodec::H264, data);
    if let Ok(text) = std::str::from_utf8(data) {
        let locals = ["127.0.0.1:40000".parse().unwrap()];
        let _ = stun::advertise_shared_port(text, &locals, 7882);
        let _ = stun::sdp_ufrags(text);
        let _ = sdp::answering_role(text);
        let _ = sdp::fragment_value(text, "a=ice-ufrag:");
        let _ = sdp::ice_fragment(text);
        let _ = sdp::with_ice_credentials(text, "u", "p");
    }
    // Interpret the bytes as a packet stream from two sources with switches in between.
    let mut d = Downtrack::new(1, 90_000, true, 0, 0);
    let t0 = Instant::now();
    for (i, c) in data.chunks(8).enumerate() {
        if c.len() < 8 {
            break;
        }
        let source = 1 + (c[0] & 1) as u64;
        if c[0] & 2 != 0 {
            d.switch_to(Some(source));
        }
        if c[0] & 4 != 0 {
            d.drop_and_hold();
        }
        let p = Incoming {
            source,
            seq: u16::from_be_bytes([c[1], c[2]]),
            ts: u32::from_be_bytes([c[3], c[4], c[5], c[6]]),
            keyframe: c[7] & 1 == 1,
        };
        let v = d.rewrite(&p, t0 + Duration::from_millis(i as u64 * (c[7] as u64)));
        // A queue that was full: take the packet back.
        if let (Verdict::Forward(out), true) = (v, c[7] & 2 != 0) {
            d.undo(out);
        }
    }
});
