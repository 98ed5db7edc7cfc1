//! The codecs the SFU negotiates (Opus, VP8, H.264) and the payload types a viewer's leg
//! ended up with.

use super::keyframe::VideoCodec;
use super::sfu::PayloadTypes;
use rtc::peer_connection::configuration::media_engine::{
    MIME_TYPE_H264, MIME_TYPE_OPUS, MIME_TYPE_VP8,
};
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpSendParameters, RtpCodecKind,
};
use std::sync::atomic::Ordering;
use webrtc::peer_connection::MediaEngine;

/// Only what the SFU forwards: Opus, VP8 and H.264 (packetization mode 1, baseline and
/// constrained baseline). Offering VP9/AV1 to a publisher could leave a feed nobody can
/// switch to; without RTX, retransmissions come on the primary SSRC and are rewritten like
/// any other packet.
pub(super) fn register_sfu_codecs(engine: &mut MediaEngine) -> webrtc::error::Result<()> {
    let feedback = |typ: &str, parameter: &str| RTCPFeedback {
        typ: typ.to_owned(),
        parameter: parameter.to_owned(),
    };
    let video_feedback = vec![
        feedback("goog-remb", ""),
        feedback("ccm", "fir"),
        feedback("nack", ""),
        feedback("nack", "pli"),
    ];
    engine.register_codec(
        RTCRtpCodecParameters {
            rtp_codec: opus(),
            payload_type: 111,
        },
        RtpCodecKind::Audio,
    )?;
    let mut vp8 = video_codec(VideoCodec::Vp8);
    vp8.rtcp_feedback = video_feedback.clone();
    engine.register_codec(
        RTCRtpCodecParameters {
            rtp_codec: vp8,
            payload_type: 96,
        },
        RtpCodecKind::Video,
    )?;
    for (pt, profile) in [(102, "42001f"), (125, "42e01f")] {
        let mut h264 = video_codec(VideoCodec::H264);
        h264.sdp_fmtp_line =
            format!("level-asymmetry-allowed=1;packetization-mode=1;profile-level-id={profile}");
        h264.rtcp_feedback = video_feedback.clone();
        engine.register_codec(
            RTCRtpCodecParameters {
                rtp_codec: h264,
                payload_type: pt,
            },
            RtpCodecKind::Video,
        )?;
    }
    Ok(())
}

pub(super) fn opus() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_OPUS.to_owned(),
        clock_rate: 48_000,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
        rtcp_feedback: vec![],
    }
}

pub(super) fn video_codec(c: VideoCodec) -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: match c {
            VideoCodec::Vp8 => MIME_TYPE_VP8,
            VideoCodec::H264 => MIME_TYPE_H264,
        }
        .to_owned(),
        clock_rate: 90_000,
        channels: 0,
        sdp_fmtp_line: match c {
            VideoCodec::Vp8 => String::new(),
            VideoCodec::H264 => {
                "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f".into()
            }
        },
        rtcp_feedback: vec![],
    }
}

/// Notes the payload type a viewer's leg negotiated for each codec the SFU forwards; the
/// first (preferred) payload type of a codec wins.
pub(super) fn record_payload_types(params: &RTCRtpSendParameters, into: &PayloadTypes) {
    for c in &params.rtp_parameters.codecs {
        let m = &c.rtp_codec.mime_type;
        let slot = if m.eq_ignore_ascii_case(MIME_TYPE_OPUS) {
            &into.opus
        } else if m.eq_ignore_ascii_case(MIME_TYPE_VP8) {
            &into.vp8
        } else if m.eq_ignore_ascii_case(MIME_TYPE_H264) {
            &into.h264
        } else {
            continue;
        };
        let _ = slot.compare_exchange(0, c.payload_type, Ordering::Relaxed, Ordering::Relaxed);
    }
}
