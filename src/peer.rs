//! Who a client is, and how much of the node one client address may hold.
//!
//! The address is the peer's, or — when the peer is a proxy on this host (loopback, as
//! docs/deploy.md sets nginx or Caddy up) — the last address it put in `X-Forwarded-For`.
//! [`PerIp`] caps the WebSocket sessions, and separately the HTTP requests in progress, of
//! one address (`--max-connections-per-ip`): one machine cannot take the node's connection
//! slots, nor keep every request handler busy. Loopback clients are exempt unless
//! `--limit-loopback` (load tests and tools on the node's own host).

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use dashmap::DashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

/// The client's address (see the module's documentation).
pub fn client_address(headers: &HeaderMap, peer: Option<SocketAddr>) -> IpAddr {
    let peer = peer
        .map(|p| p.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    if !peer.is_loopback() {
        return peer;
    }
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|a| a.trim().parse::<IpAddr>().ok())
        .next_back()
        .unwrap_or(peer)
}

/// What one client address holds: its WebSocket sessions and its HTTP requests in progress.
pub struct PerIp {
    limit: usize,
    limit_loopback: bool,
    sessions: DashMap<IpAddr, usize>,
    requests: DashMap<IpAddr, usize>,
}

/// A slot taken; given back when dropped.
pub struct Held {
    map: Option<(Arc<PerIp>, bool)>,
    ip: IpAddr,
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some((p, sessions)) = &self.map {
            let map = if *sessions { &p.sessions } else { &p.requests };
            map.remove_if_mut(&self.ip, |_, n| {
                *n -= 1;
                *n == 0
            });
        }
    }
}

impl PerIp {
    pub fn new(limit: usize, limit_loopback: bool) -> Arc<PerIp> {
        Arc::new(PerIp {
            limit,
            limit_loopback,
            sessions: DashMap::new(),
            requests: DashMap::new(),
        })
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// A WebSocket session slot for `ip`, or `None` if it holds `limit` already.
    pub fn session(self: &Arc<Self>, ip: IpAddr) -> Option<Held> {
        self.take(ip, true)
    }

    fn take(self: &Arc<Self>, ip: IpAddr, sessions: bool) -> Option<Held> {
        if self.limit == 0 || (ip.is_loopback() && !self.limit_loopback) {
            return Some(Held { map: None, ip });
        }
        let map = if sessions {
            &self.sessions
        } else {
            &self.requests
        };
        let mut n = map.entry(ip).or_insert(0);
        if *n >= self.limit {
            return None;
        }
        *n += 1;
        Some(Held {
            map: Some((self.clone(), sessions)),
            ip,
        })
    }
}

/// Middleware for every HTTP route but the WebSocket upgrade (whose sessions are counted, and
/// refused with a close code, by the edge): 429 with `Retry-After` for an address that has
/// `limit` requests in progress.
pub async fn limit_requests(
    State(per_ip): State<Arc<PerIp>>,
    req: Request,
    next: Next,
) -> Response {
    if req.uri().path().starts_with("/ws/") {
        return next.run(req).await;
    }
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let ip = client_address(req.headers(), peer);
    let Some(_held) = per_ip.take(ip, false) else {
        let mut r = (
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "too many requests in progress from {ip} (at most {} at once); try again",
                per_ip.limit
            ),
        )
            .into_response();
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return r;
    };
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_holds_at_most_the_limit_and_gets_slots_back() {
        let p = PerIp::new(2, false);
        let a: IpAddr = "203.0.113.7".parse().unwrap();
        let b: IpAddr = "203.0.113.8".parse().unwrap();
        let one = p.session(a).unwrap();
        let _two = p.session(a).unwrap();
        assert!(p.session(a).is_none(), "a third from the same address");
        assert!(p.session(b).is_some(), "another address is counted apart");
        assert!(p.take(a, false).is_some(), "requests are counted apart");
        drop(one);
        assert!(p.session(a).is_some(), "a slot given back");
        // Loopback is exempt unless asked; 0 is no limit.
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let held: Vec<Held> = (0..5).filter_map(|_| p.session(lo)).collect();
        assert_eq!(held.len(), 5);
        let strict = PerIp::new(1, true);
        let _h = strict.session(lo).unwrap();
        assert!(strict.session(lo).is_none());
        let off = PerIp::new(0, true);
        assert!((0..10).all(|_| off.session(a).is_some()));
    }

    #[test]
    fn behind_a_local_proxy_the_forwarded_address_counts() {
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            "198.51.100.1, 203.0.113.9".parse().unwrap(),
        );
        let local: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let remote: SocketAddr = "192.0.2.4:5000".parse().unwrap();
        assert_eq!(
            client_address(&h, Some(local)),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            client_address(&h, Some(remote)),
            remote.ip(),
            "only a local proxy is believed"
        );
    }
}
