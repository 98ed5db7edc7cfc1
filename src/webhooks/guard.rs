//! Where a webhook may point: an `http(s)` URL with a host, and unless the server allows it
//! (`--webhook-allow-private`, on with `--dev`), never an address on the server's own
//! networks — loopback, private, shared, link-local (cloud metadata services live there),
//! unique-local — whether written in the URL or returned by DNS. Checked when a host sets
//! the URL and again on every attempt, by the HTTP client's resolver, so a name that later
//! resolves inward is refused too.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

/// Whether `ip` is on a network a server should not be made to call on a host's behalf.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => internal_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return internal_v4(v4);
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (first & 0xffc0) == 0xfe80 // link-local fe80::/10
                || v6 == Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0) // NAT64 prefix itself
        }
    }
}

fn internal_v4(v4: Ipv4Addr) -> bool {
    let [a, b, ..] = v4.octets();
    v4.is_loopback()
        || v4.is_private()
        || v4.is_link_local()
        || v4.is_unspecified()
        || v4.is_broadcast()
        || v4.is_multicast()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space 100.64.0.0/10
        || (a == 192 && b == 0 && v4.octets()[2] == 0) // IETF protocol assignments
        || a >= 240 // reserved
}

const PRIVATE_HINT: &str = "start the server with --webhook-allow-private to allow it";

/// Checks a URL a host gives: `http` or `https`, a host, at most 2,048 characters, no
/// credentials, and (unless `allow_private`) no internal address literal. The error names
/// the problem in the host's terms.
pub fn check_url(raw: &str, allow_private: bool) -> Result<url::Url, String> {
    if raw.len() > 2048 {
        return Err("url: longer than 2048 characters".into());
    }
    let url = url::Url::parse(raw).map_err(|e| format!("url: not a valid URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "url: the scheme must be https or http, not {:?}",
            url.scheme()
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("url: must not carry credentials (the signature authenticates)".into());
    }
    let internal = match url.host() {
        None => return Err("url: has no host".into()),
        Some(url::Host::Ipv4(ip)) => is_internal(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => is_internal(IpAddr::V6(ip)),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
    };
    if internal && !allow_private {
        return Err(format!(
            "url: {} is an internal address; {PRIVATE_HINT}",
            url.host_str().unwrap_or_default()
        ));
    }
    Ok(url)
}

/// The HTTP client's resolver: the system's, minus internal addresses unless allowed.
pub(super) struct Resolver {
    pub allow_private: bool,
}

impl reqwest::dns::Resolve for Resolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_string();
        Box::pin(async move {
            let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = all
                .iter()
                .copied()
                .filter(|a| allow_private || !is_internal(a.ip()))
                .collect();
            if allowed.is_empty() {
                let why = if all.is_empty() {
                    format!("{host} has no address")
                } else {
                    format!("{host} resolves only to internal addresses; {PRIVATE_HINT}")
                };
                return Err(why.into());
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

impl Resolver {
    pub(super) fn shared(allow_private: bool) -> Arc<Resolver> {
        Arc::new(Resolver { allow_private })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_recognised() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            assert!(is_internal(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "1.1.1.1", "2001:4860:4860::8888", "100.128.0.1"] {
            assert!(!is_internal(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn urls_are_checked_in_the_hosts_terms() {
        assert!(check_url("https://crm.example.com/hooks/showfloor", false).is_ok());
        assert!(check_url("http://crm.example.com:8080/x?y=1", false).is_ok());
        let err = |u: &str| check_url(u, false).unwrap_err();
        assert!(err("ftp://crm.example.com/").contains("scheme must be https or http"));
        assert!(err("not a url").contains("not a valid URL"));
        assert!(err("https://user:pw@crm.example.com/").contains("credentials"));
        assert!(err("http://127.0.0.1:9000/hook").contains("--webhook-allow-private"));
        assert!(err("http://[::1]/hook").contains("internal address"));
        assert!(err("http://localhost/hook").contains("internal address"));
        assert!(err(&format!("https://x.example/{}", "a".repeat(2048))).contains("2048"));
        assert!(check_url("http://127.0.0.1:9000/hook", true).is_ok());
    }
}
