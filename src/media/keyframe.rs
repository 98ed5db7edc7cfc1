//! Key-frame detection from RTP payloads (VP8 payload descriptor, H.264 NAL units incl.
//! STAP-A and FU-A). Pure functions: run once per packet at ingest, never per subscriber.

/// The video codecs the SFU forwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VideoCodec {
    Vp8,
    H264,
}

impl VideoCodec {
    /// From a negotiated MIME type (`video/VP8`, `video/H264`; case-insensitive).
    pub fn from_mime(mime: &str) -> Option<VideoCodec> {
        if mime.eq_ignore_ascii_case("video/vp8") {
            Some(VideoCodec::Vp8)
        } else if mime.eq_ignore_ascii_case("video/h264") {
            Some(VideoCodec::H264)
        } else {
            None
        }
    }

    pub fn mime(self) -> &'static str {
        match self {
            VideoCodec::Vp8 => "video/VP8",
            VideoCodec::H264 => "video/H264",
        }
    }
}

/// Whether this RTP payload starts a key frame a decoder can begin with.
pub fn starts_keyframe(codec: VideoCodec, payload: &[u8]) -> bool {
    match codec {
        VideoCodec::Vp8 => vp8_starts_keyframe(payload),
        VideoCodec::H264 => h264_starts_keyframe(payload),
    }
}

/// VP8 (RFC 7741): the first packet of a key frame has S=1, PID=0, and the first byte of the
/// VP8 payload header has P (inverse key frame flag) = 0.
pub fn vp8_starts_keyframe(payload: &[u8]) -> bool {
    let Some(&first) = payload.first() else {
        return false;
    };
    let extended = first & 0x80 != 0;
    let start = first & 0x10 != 0;
    let partition = first & 0x07;
    if !start || partition != 0 {
        return false;
    }
    let mut i = 1;
    if extended {
        let Some(&x) = payload.get(i) else {
            return false;
        };
        i += 1;
        if x & 0x80 != 0 {
            // PictureID: 7 or 15 bits.
            let Some(&pid) = payload.get(i) else {
                return false;
            };
            i += if pid & 0x80 != 0 { 2 } else { 1 };
        }
        if x & 0x40 != 0 {
            i += 1; // TL0PICIDX
        }
        if x & 0x30 != 0 {
            i += 1; // TID/Y/KEYIDX
        }
    }
    match payload.get(i) {
        Some(&hdr) => hdr & 0x01 == 0,
        None => false,
    }
}

/// H.264 NAL types that let a decoder start: IDR slice (5) and SPS (7).
fn h264_nal_is_key(nal_type: u8) -> bool {
    nal_type == 5 || nal_type == 7
}

/// H.264 (RFC 6184): a single NAL unit of type IDR/SPS, a STAP-A holding one, or the first
/// fragment (S=1) of an FU-A of an IDR.
pub fn h264_starts_keyframe(payload: &[u8]) -> bool {
    let Some(&first) = payload.first() else {
        return false;
    };
    match first & 0x1f {
        t @ 1..=23 => h264_nal_is_key(t),
        24 => {
            // STAP-A: 16-bit size, NAL unit, repeated.
            let mut i = 1;
            while i + 2 < payload.len() {
                let size = u16::from_be_bytes([payload[i], payload[i + 1]]) as usize;
                i += 2;
                if size == 0 || i + size > payload.len() {
                    return false;
                }
                if h264_nal_is_key(payload[i] & 0x1f) {
                    return true;
                }
                i += size;
            }
            false
        }
        28 => {
            // FU-A: indicator, header (S E R type).
            match payload.get(1) {
                Some(&fu) => fu & 0x80 != 0 && h264_nal_is_key(fu & 0x1f),
                None => false,
            }
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vp8_key_and_delta() {
        // S=1, PID=0, no extension; payload header P=0 → key frame.
        assert!(vp8_starts_keyframe(&[0x10, 0x00, 0x9d, 0x01, 0x2a]));
        // P=1 → inter frame.
        assert!(!vp8_starts_keyframe(&[0x10, 0x01]));
        // Not the start of a partition.
        assert!(!vp8_starts_keyframe(&[0x00, 0x00]));
        // Extended with a 15-bit picture id (X=1, I=1, M=1), then key frame header.
        assert!(vp8_starts_keyframe(&[0x90, 0x80, 0x81, 0x23, 0x00]));
        // Extended with a 7-bit picture id, TL0PICIDX and TID, then inter frame.
        assert!(!vp8_starts_keyframe(&[0x90, 0xe0, 0x05, 0x01, 0x20, 0x01]));
        // Truncated descriptors never count.
        assert!(!vp8_starts_keyframe(&[0x90, 0x80]));
        assert!(!vp8_starts_keyframe(&[]));
    }

    #[test]
    fn h264_single_stap_and_fu() {
        assert!(h264_starts_keyframe(&[0x65, 0x88])); // IDR
        assert!(h264_starts_keyframe(&[0x67, 0x42])); // SPS
        assert!(!h264_starts_keyframe(&[0x41, 0x9a])); // non-IDR slice
        assert!(!h264_starts_keyframe(&[0x68, 0xce])); // PPS alone
                                                       // STAP-A: SPS (2 bytes) + PPS (2 bytes).
        assert!(h264_starts_keyframe(&[
            0x78, 0x00, 0x02, 0x67, 0x42, 0x00, 0x02, 0x68, 0xce
        ]));
        // STAP-A: two non-key NAL units.
        assert!(!h264_starts_keyframe(&[
            0x78, 0x00, 0x02, 0x41, 0x9a, 0x00, 0x02, 0x06, 0x05
        ]));
        // STAP-A with a size past the end.
        assert!(!h264_starts_keyframe(&[0x78, 0x00, 0x09, 0x67]));
        // FU-A start of IDR; middle of IDR; start of non-IDR.
        assert!(h264_starts_keyframe(&[0x7c, 0x85, 0x00]));
        assert!(!h264_starts_keyframe(&[0x7c, 0x05, 0x00]));
        assert!(!h264_starts_keyframe(&[0x7c, 0x81, 0x00]));
        assert!(!h264_starts_keyframe(&[0x7c]));
    }

    #[test]
    fn mime_names() {
        assert_eq!(VideoCodec::from_mime("video/vp8"), Some(VideoCodec::Vp8));
        assert_eq!(VideoCodec::from_mime("video/H264"), Some(VideoCodec::H264));
        assert_eq!(VideoCodec::from_mime("video/AV1"), None);
    }
}
