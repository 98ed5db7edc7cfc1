//! Pure reads and edits of the SDP a WHIP/WHEP client sends: the DTLS role its offer takes,
//! and the ICE-restart offer and answer fragment of a trickle PATCH.

use rtc::peer_connection::transport::RTCDtlsRole;

/// The DTLS role to answer an offer with (RFC 5763 §5): `passive` (server) to an `active`
/// offer, `active` (client) to a `passive` or `actpass` one, or to an offer that names none.
///
/// The webrtc crate answers `active` whatever the offer says unless it is told otherwise;
/// against an `active` offerer (some encoders) both sides would wait for the other's DTLS
/// hello. A media-level attribute overrides the session-level one; the first media section
/// that has one decides, as the crate itself reads the remote role.
pub fn answering_role(offer: &str) -> Result<RTCDtlsRole, String> {
    let mut session_level = None;
    let mut media_level = None;
    let mut in_media = false;
    for line in offer.lines().map(str::trim_end) {
        if line.starts_with("m=") {
            in_media = true;
        } else if let Some(v) = line.strip_prefix("a=setup:") {
            let slot = if in_media {
                &mut media_level
            } else {
                &mut session_level
            };
            if slot.is_none() {
                *slot = Some(v.trim());
            }
            if media_level.is_some() {
                break;
            }
        }
    }
    match media_level.or(session_level) {
        None | Some("actpass") | Some("passive") => Ok(RTCDtlsRole::Client),
        Some("active") => Ok(RTCDtlsRole::Server),
        Some("holdconn") => Err(
            "the offer's a=setup:holdconn asks for no DTLS connection; offer actpass, active \
             or passive"
                .into(),
        ),
        Some(other) => Err(format!(
            "the offer's a=setup:{} is not a DTLS role; offer actpass, active or passive",
            other.chars().take(32).collect::<String>()
        )),
    }
}

/// `offer` with its ICE credentials replaced (an ICE restart asked for by PATCH).
pub fn with_ice_credentials(offer: &str, ufrag: &str, pwd: &str) -> String {
    offer
        .split_inclusive('\n')
        .map(|l| {
            if l.starts_with("a=ice-ufrag:") {
                format!("a=ice-ufrag:{ufrag}\r\n")
            } else if l.starts_with("a=ice-pwd:") {
                format!("a=ice-pwd:{pwd}\r\n")
            } else {
                l.to_string()
            }
        })
        .collect()
}

/// The trickle-ice-sdpfrag answering an ICE restart: our ICE credentials and candidates from
/// `answer`, each line once.
pub fn ice_fragment(answer: &str) -> String {
    let mut out = String::new();
    let mut seen = std::collections::HashSet::new();
    for l in answer.lines().map(str::trim_end) {
        let keep = l.starts_with("a=ice-ufrag:")
            || l.starts_with("a=ice-pwd:")
            || l.starts_with("a=candidate:");
        if keep && seen.insert(l) {
            out.push_str(l);
            out.push_str("\r\n");
        }
    }
    out
}

/// The value of the first line of a trickle-ice-sdpfrag that starts with `key`.
pub fn fragment_value(frag: &str, key: &str) -> Option<String> {
    frag.lines()
        .find_map(|l| l.trim_end().strip_prefix(key).map(str::to_string))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(session: Option<&str>, media: &[Option<&str>]) -> String {
        let mut s = String::from("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n");
        if let Some(r) = session {
            s.push_str(&format!("a=setup:{r}\r\n"));
        }
        for m in media {
            s.push_str("m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\n");
            if let Some(r) = m {
                s.push_str(&format!("a=setup:{r}\r\n"));
            }
        }
        s
    }

    #[test]
    fn answers_the_opposite_role() {
        let role = |r| answering_role(&offer(None, &[Some(r), Some(r)])).unwrap();
        assert_eq!(role("active"), RTCDtlsRole::Server);
        assert_eq!(role("passive"), RTCDtlsRole::Client);
        assert_eq!(role("actpass"), RTCDtlsRole::Client);
        assert_eq!(
            answering_role(&offer(None, &[None])).unwrap(),
            RTCDtlsRole::Client
        );
    }

    #[test]
    fn media_level_overrides_session_level() {
        assert_eq!(
            answering_role(&offer(Some("passive"), &[Some("active")])).unwrap(),
            RTCDtlsRole::Server
        );
        assert_eq!(
            answering_role(&offer(Some("active"), &[None])).unwrap(),
            RTCDtlsRole::Server
        );
        assert_eq!(
            answering_role(&offer(Some("active"), &[Some("actpass")])).unwrap(),
            RTCDtlsRole::Client
        );
        // The first media section with a role decides.
        assert_eq!(
            answering_role(&offer(None, &[None, Some("active"), Some("passive")])).unwrap(),
            RTCDtlsRole::Server
        );
    }

    #[test]
    fn refuses_what_is_not_a_role() {
        let e = answering_role(&offer(None, &[Some("holdconn")])).unwrap_err();
        assert!(e.contains("holdconn"), "{e}");
        let e = answering_role(&offer(None, &[Some("sideways")])).unwrap_err();
        assert!(e.contains("sideways"), "{e}");
    }

    #[test]
    fn ice_restart_edits() {
        let o = "v=0\r\na=ice-ufrag:old\r\na=ice-pwd:oldpwd\r\na=mid:0\r\n";
        assert_eq!(
            with_ice_credentials(o, "new", "newpwd"),
            "v=0\r\na=ice-ufrag:new\r\na=ice-pwd:newpwd\r\na=mid:0\r\n"
        );
        let a = "v=0\r\na=ice-ufrag:u\r\na=ice-pwd:p\r\na=candidate:1 1 udp 1 127.0.0.1 9 typ \
                 host\r\nm=video 9\r\na=ice-ufrag:u\r\na=ice-pwd:p\r\na=setup:active\r\n";
        assert_eq!(
            ice_fragment(a),
            "a=ice-ufrag:u\r\na=ice-pwd:p\r\na=candidate:1 1 udp 1 127.0.0.1 9 typ host\r\n"
        );
        assert_eq!(
            fragment_value("a=ice-ufrag:x\r\na=mid:1\r\n", "a=mid:").as_deref(),
            Some("1")
        );
    }
}
