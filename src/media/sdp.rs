//! Pure edits of the SDP of a trickle PATCH: the ICE-restart offer and the answer fragment.

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
