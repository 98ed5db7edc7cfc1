//! Pure parsers for the single-port demultiplexer: is this datagram STUN, and whose ICE
//! username fragment does its USERNAME attribute name; and the SDP edits that advertise the
//! shared port.

use std::net::{IpAddr, SocketAddr};

const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xa4, 0x42];
const ATTR_USERNAME: u16 = 0x0006;
const BINDING_REQUEST: u16 = 0x0001;

/// Whether `buf` looks like a STUN message (RFC 8489 header with the magic cookie).
pub fn is_stun(buf: &[u8]) -> bool {
    buf.len() >= 20 && buf[0] < 4 && buf[4..8] == MAGIC_COOKIE
}

/// For a STUN Binding request, the *recipient's* ufrag: the part of USERNAME before `:`
/// (RFC 8445 §7.2.2: "RFRAG:LFRAG" as sent, where RFRAG is ours).
pub fn binding_request_ufrag(buf: &[u8]) -> Option<&str> {
    if !is_stun(buf) {
        return None;
    }
    let msg_type = u16::from_be_bytes([buf[0], buf[1]]);
    if msg_type != BINDING_REQUEST {
        return None;
    }
    let body_len = u16::from_be_bytes([buf[2], buf[3]]) as usize;
    let end = (20 + body_len).min(buf.len());
    let mut i = 20;
    while i + 4 <= end {
        let t = u16::from_be_bytes([buf[i], buf[i + 1]]);
        let len = u16::from_be_bytes([buf[i + 2], buf[i + 3]]) as usize;
        let v = i + 4;
        if v + len > end {
            return None;
        }
        if t == ATTR_USERNAME {
            let name = std::str::from_utf8(&buf[v..v + len]).ok()?;
            let ours = name.split(':').next()?;
            return (!ours.is_empty()).then_some(ours);
        }
        // Attributes are padded to 4 bytes.
        i = v + len.div_ceil(4) * 4;
    }
    None
}

/// Every `a=ice-ufrag:` value in an SDP.
pub fn sdp_ufrags(sdp: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in sdp.lines() {
        if let Some(u) = line.trim_end().strip_prefix("a=ice-ufrag:") {
            if !out.iter().any(|x| x == u) {
                out.push(u.to_string());
            }
        }
    }
    out
}

/// Rewrites the UDP host candidates of an SDP that name one of `locals` (the sockets a
/// PeerConnection thinks it has) to the shared media address's port; other lines are kept.
/// With `public` addresses (a 1:1 NAT in front of the machine), each such candidate of an IP
/// family that has public addresses names those instead, once each: the private addresses
/// are not reachable from outside, and are not shown.
pub fn advertise_shared_port(
    sdp: &str,
    locals: &[SocketAddr],
    port: u16,
    public: &[IpAddr],
) -> String {
    let mut out = String::with_capacity(sdp.len());
    let mut announced: Vec<IpAddr> = Vec::new();
    for line in sdp.split_inclusive('\n') {
        let body = line.trim_end_matches(['\r', '\n']);
        let ending = &line[body.len()..];
        match rewrite_candidate(body, locals, port, public, &mut announced) {
            Some(new) => {
                for l in new {
                    out.push_str(&l);
                    out.push_str(ending);
                }
            }
            None => out.push_str(line),
        }
    }
    out
}

fn rewrite_candidate(
    line: &str,
    locals: &[SocketAddr],
    port: u16,
    public: &[IpAddr],
    announced: &mut Vec<IpAddr>,
) -> Option<Vec<String>> {
    let rest = line.strip_prefix("a=candidate:")?;
    // foundation component transport priority address port typ type ...
    let mut f: Vec<String> = rest.split(' ').map(str::to_string).collect();
    if f.len() < 8 || !f[2].eq_ignore_ascii_case("udp") || f[6] != "typ" || f[7] != "host" {
        return None;
    }
    let ip: IpAddr = f[4].parse().ok()?;
    let p: u16 = f[5].parse().ok()?;
    if !locals.iter().any(|a| a.ip() == ip && a.port() == p) {
        return None;
    }
    f[5] = port.to_string();
    let mapped: Vec<IpAddr> = public
        .iter()
        .filter(|p| p.is_ipv4() == ip.is_ipv4())
        .copied()
        .collect();
    if mapped.is_empty() {
        return Some(vec![format!("a=candidate:{}", f.join(" "))]);
    }
    let mut lines = Vec::new();
    for p in mapped {
        if announced.contains(&p) {
            continue;
        }
        announced.push(p);
        f[4] = p.to_string();
        lines.push(format!("a=candidate:{}", f.join(" ")));
    }
    Some(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(username: &str) -> Vec<u8> {
        let mut attr = Vec::new();
        attr.extend_from_slice(&ATTR_USERNAME.to_be_bytes());
        attr.extend_from_slice(&(username.len() as u16).to_be_bytes());
        attr.extend_from_slice(username.as_bytes());
        while attr.len() % 4 != 0 {
            attr.push(0);
        }
        // A PRIORITY attribute after it, as real requests carry.
        attr.extend_from_slice(&[0x00, 0x24, 0x00, 0x04, 1, 2, 3, 4]);
        let mut m = vec![0x00, 0x01];
        m.extend_from_slice(&(attr.len() as u16).to_be_bytes());
        m.extend_from_slice(&MAGIC_COOKIE);
        m.extend_from_slice(&[7u8; 12]);
        m.extend_from_slice(&attr);
        m
    }

    #[test]
    fn finds_our_ufrag_in_a_binding_request() {
        let m = binding("srvUfrag:cliUfrag");
        assert!(is_stun(&m));
        assert_eq!(binding_request_ufrag(&m), Some("srvUfrag"));
        // A response (0x0101) is not routed by username.
        let mut r = m.clone();
        r[1] = 0x01;
        r[0] = 0x01;
        assert_eq!(binding_request_ufrag(&r), None);
        // Truncated attribute.
        assert_eq!(binding_request_ufrag(&m[..26]), None);
        // Not STUN at all (RTP / DTLS first bytes).
        assert!(!is_stun(&[0x80; 40]));
        assert!(!is_stun(&[0x16; 40]));
        assert_eq!(binding_request_ufrag(&[]), None);
    }

    #[test]
    fn rewrites_only_our_host_candidates() {
        let sdp = "v=0\r\na=ice-ufrag:abcd\r\n\
                   a=candidate:1 1 udp 2130706431 127.0.0.1 40001 typ host\r\n\
                   a=candidate:2 1 udp 2130706431 127.0.0.1 40002 typ host\r\n\
                   a=candidate:3 1 tcp 2130706431 127.0.0.1 40001 typ host tcptype passive\r\n\
                   a=ice-ufrag:abcd\r\n";
        let locals = ["127.0.0.1:40001".parse().unwrap()];
        let out = advertise_shared_port(sdp, &locals, 7882, &[]);
        assert!(out.contains("a=candidate:1 1 udp 2130706431 127.0.0.1 7882 typ host\r\n"));
        assert!(out.contains("127.0.0.1 40002 typ host"));
        assert!(out.contains("tcp 2130706431 127.0.0.1 40001"));
        assert_eq!(sdp_ufrags(&out), vec!["abcd".to_string()]);
    }

    #[test]
    fn behind_a_one_to_one_nat_our_candidates_name_the_public_address_once() {
        let sdp = "v=0\r\n\
                   a=candidate:1 1 udp 2130706431 10.0.0.5 40001 typ host\r\n\
                   a=candidate:2 1 udp 2130706431 172.17.0.1 40002 typ host\r\n\
                   a=candidate:3 1 udp 2130706431 fd00::5 40003 typ host\r\n\
                   a=candidate:4 1 udp 1694498815 198.51.100.9 5000 typ srflx\r\n";
        let locals: Vec<SocketAddr> = ["10.0.0.5:40001", "172.17.0.1:40002", "[fd00::5]:40003"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        let public = ["203.0.113.7".parse().unwrap()];
        let out = advertise_shared_port(sdp, &locals, 7882, &public);
        assert!(out.contains("a=candidate:1 1 udp 2130706431 203.0.113.7 7882 typ host\r\n"));
        assert_eq!(out.matches("203.0.113.7").count(), 1, "once: {out}");
        assert!(
            !out.contains("10.0.0.5") && !out.contains("172.17.0.1"),
            "{out}"
        );
        // No public IPv6 address: IPv6 candidates stay as they are (port rewritten).
        assert!(out.contains("fd00::5 7882 typ host"), "{out}");
        // Not ours: untouched.
        assert!(out.contains("198.51.100.9 5000 typ srflx"));
        // Two public addresses of a family: one candidate each.
        let public: Vec<IpAddr> = vec![
            "203.0.113.7".parse().unwrap(),
            "203.0.113.8".parse().unwrap(),
        ];
        let out = advertise_shared_port(sdp, &locals, 7882, &public);
        assert!(
            out.contains("203.0.113.7 7882") && out.contains("203.0.113.8 7882"),
            "{out}"
        );
        assert_eq!(out.matches("typ host").count(), 3, "{out}");
    }
}
