//! The Showfloor load-test harness: scenarios that drive a running server with many simulated
//! viewers over real WebSockets, measure latency from timestamps carried in the payload, and
//! check what users would notice (loss, oversell, disconnects). `main.rs` is the command line;
//! the scenarios are here, one module each (`audience`, `chat`, `flash_sale`,
//! `reconnect_storm`, `media`, `switchover`, `soak`; `room` is what they share), so tests can
//! run small versions of them in-process.

pub mod audience;
pub mod chat;
pub mod flash_sale;
pub mod janus;
pub mod media;
pub mod reconnect_storm;
pub mod room;
pub mod rtc;
pub mod soak;
pub mod socketio;
pub mod switchover;
pub mod tls;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::StreamExt;
use hdrhistogram::Histogram;
use serde::Serialize;
use showfloor::pb;
use showfloor::pb::control_client::ControlClient;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};
use tokio::net::TcpSocket;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// Loopback connections per source address: below the ephemeral port range (~28k) with room
/// to spare, so a large audience spreads over 127.0.0.1, 127.0.0.2, …
pub const CONNECTIONS_PER_SOURCE: usize = 20_000;

/// Where the server is and how to steer it.
#[derive(Debug, Clone)]
pub struct Target {
    /// HTTP/WebSocket address, e.g. 127.0.0.1:7880 (metrics and media go here).
    pub http: SocketAddr,
    /// Where viewers connect, in turn (the nodes of a cluster; else just `http`).
    pub viewer_http: Vec<SocketAddr>,
    /// gRPC endpoint, e.g. http://127.0.0.1:7881.
    pub grpc: String,
    /// A host API key.
    pub api_key: String,
    /// TLS to the server (`https`, `wss`, gRPC over TLS); `None`: plain.
    pub tls: Option<tls::Tls>,
}

pub type Ws = WebSocketStream<tls::Conn>;
pub type WsTx = SplitSink<Ws, Message>;
pub type WsRx = SplitStream<Ws>;

impl Target {
    pub async fn control(&self) -> anyhow::Result<Control> {
        let unreachable = |e: &dyn std::fmt::Display| {
            anyhow::anyhow!("cannot reach the control plane at {}: {e}", self.grpc)
        };
        let mut endpoint = tonic::transport::Endpoint::from_shared(self.grpc.clone())
            .map_err(|e| unreachable(&e))?;
        if let Some(tls) = &self.tls {
            endpoint = endpoint
                .tls_config(tls.grpc_config())
                .map_err(|e| unreachable(&e))?;
        }
        let channel = endpoint.connect().await.map_err(|e| unreachable(&e))?;
        let client = ControlClient::new(channel);
        Ok(Control {
            client,
            key: self.api_key.clone(),
        })
    }

    /// `https://HTTP-ADDR/path` with TLS, else `http://…`.
    pub fn url(&self, path: &str) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        match &self.tls {
            Some(tls) => format!(
                "{scheme}://{}:{}{path}",
                tls.host(self.http),
                self.http.port()
            ),
            None => format!("{scheme}://{}{path}", self.http),
        }
    }

    /// The node viewer `index` connects to: the addresses in turn.
    pub fn viewer_addr(&self, index: usize) -> SocketAddr {
        match self.viewer_http.len() {
            0 => self.http,
            n => self.viewer_http[index % n],
        }
    }

    /// Opens viewer `index`'s WebSocket. On loopback, connections are spread over source
    /// addresses 127.0.0.x so a single address's ephemeral ports are never the limit.
    pub async fn connect(&self, index: usize, room: &str, token: &str) -> anyhow::Result<Ws> {
        self.connect_resuming(index, room, token, None).await
    }

    /// As [`Target::connect`], asking to resume after `(last_seq, epoch)`.
    pub async fn connect_resuming(
        &self,
        index: usize,
        room: &str,
        token: &str,
        resume: Option<(u64, &str)>,
    ) -> anyhow::Result<Ws> {
        let addr = self.viewer_addr(index);
        let tcp = dial(addr, index / self.viewer_http.len().max(1)).await?;
        let (stream, scheme) = match &self.tls {
            Some(tls) => (tls.connect(tcp).await?, "wss"),
            None => (tls::Conn::Plain(tcp), "ws"),
        };
        let mut url = format!("{scheme}://{addr}/ws/{room}?token={token}");
        if let Some((last_seq, epoch)) = resume {
            url.push_str(&format!("&last_seq={last_seq}&epoch={epoch}"));
        }
        handshake(url, stream).await
    }
}

/// The WebSocket handshake on an open stream, with the harness's buffer sizes: thousands of
/// connections each reading small frames need a small read buffer (tungstenite's default of
/// 128 KiB per connection is mostly zeroed memory the harness would pay for on every read).
pub async fn handshake(url: String, stream: tls::Conn) -> anyhow::Result<Ws> {
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(8 * 1024);
    let (ws, _) = tokio_tungstenite::client_async_with_config(url, stream, Some(config)).await?;
    Ok(ws)
}

/// Opens connection `index` to `addr` (TCP, no delay). On loopback, connections are spread
/// over source addresses 127.0.0.1, 127.0.0.2, … ([`CONNECTIONS_PER_SOURCE`] each) so a
/// single address's ephemeral ports are never the limit.
pub async fn dial(addr: SocketAddr, index: usize) -> anyhow::Result<tokio::net::TcpStream> {
    let socket = TcpSocket::new_v4()?;
    if let IpAddr::V4(ip) = addr.ip() {
        if ip.is_loopback() {
            let n = 1 + (index / CONNECTIONS_PER_SOURCE) as u32;
            let source = Ipv4Addr::from(u32::from(Ipv4Addr::new(127, 0, 0, 0)) + n);
            socket.bind(SocketAddr::new(IpAddr::V4(source), 0))?;
        }
    }
    let stream = socket.connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// The control plane with the host key attached to every call.
pub struct Control {
    pub client: ControlClient<tonic::transport::Channel>,
    key: String,
}

impl Control {
    pub fn req<T>(&self, msg: T) -> tonic::Request<T> {
        let mut r = tonic::Request::new(msg);
        if let Ok(v) = format!("Bearer {}", self.key).parse() {
            r.metadata_mut().insert("authorization", v);
        }
        r
    }

    /// Ends a room the harness created (its data stays in the server's store).
    pub async fn close_room(&mut self, room: &str) {
        let req = self.req(pb::RoomRef {
            room_id: room.to_string(),
        });
        if let Err(e) = self.client.close_room(req).await {
            eprintln!("could not close room {room}: {}", e.message());
        }
    }
}

/// A viewer token minted with the room's key (from CreateRoom / GetRoomTokenKey).
pub fn token(room: &str, key: &str, viewer: &str, tier: Option<&str>) -> String {
    use showfloor::auth::{issue_viewer_token, Role, ViewerClaims};
    let now = showfloor::model::now_ms() / 1000;
    issue_viewer_token(
        key,
        &ViewerClaims {
            room: room.to_string(),
            sub: viewer.to_string(),
            name: viewer.to_string(),
            role: if tier.is_some() {
                Role::Dealer
            } else {
                Role::Viewer
            },
            tier: tier.map(str::to_string),
            inv: None,
            iat: now,
            exp: now + 6 * 3600,
            jti: format!("lt-{viewer}-{now}"),
        },
    )
    .expect("a room key signs")
}

/// Reads frames until one of type `kind` arrives (other frames are skipped).
pub async fn expect(rx: &mut WsRx, kind: &str, within: Duration) -> anyhow::Result<String> {
    let needle = format!("{{\"type\":\"{kind}\"");
    tokio::time::timeout(within, async {
        while let Some(m) = rx.next().await {
            if let Message::Text(t) = m? {
                if t.as_str().starts_with(&needle) {
                    return Ok(t.as_str().to_string());
                }
            }
        }
        anyhow::bail!("the connection closed before {kind}")
    })
    .await
    .map_err(|_| anyhow::anyhow!("no {kind} within {within:?}"))?
}

/// Microseconds since the harness's epoch: send and receive times on one clock.
#[derive(Debug, Clone, Copy)]
pub struct Clock(Instant);

impl Clock {
    pub fn new() -> Clock {
        Clock(Instant::now())
    }
    pub fn now_us(&self) -> u64 {
        self.0.elapsed().as_micros() as u64
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

/// A latency histogram in microseconds (1 µs to 10 min, 3 significant digits).
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid bounds")
}

/// Percentiles of a histogram, in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub count: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    pub fn of(h: &Histogram<u64>) -> Latency {
        let ms = |us: u64| us as f64 / 1000.0;
        Latency {
            count: h.len(),
            p50_ms: ms(h.value_at_quantile(0.50)),
            p90_ms: ms(h.value_at_quantile(0.90)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
        }
    }
}

/// One correctness check of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

/// What a scenario found: numbers, latency and checks. A run fails when any check fails.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub scenario: String,
    pub numbers: serde_json::Map<String, serde_json::Value>,
    pub latency: Option<Latency>,
    pub checks: Vec<Check>,
}

impl Report {
    pub fn new(scenario: &str) -> Report {
        Report {
            scenario: scenario.to_string(),
            numbers: serde_json::Map::new(),
            latency: None,
            checks: Vec::new(),
        }
    }

    pub fn number(&mut self, name: &str, v: impl Into<serde_json::Value>) {
        self.numbers.insert(name.to_string(), v.into());
    }

    pub fn check(&mut self, name: &str, ok: bool, detail: String) {
        self.checks.push(Check {
            name: name.to_string(),
            ok,
            detail,
        });
    }

    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.ok)
    }

    /// The summary for people.
    pub fn human(&self) -> String {
        let mut s = format!("scenario {}\n", self.scenario);
        for (k, v) in &self.numbers {
            s.push_str(&format!("  {k:<24} {v}\n"));
        }
        if let Some(l) = &self.latency {
            s.push_str(&format!(
                "  latency ms               p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}  (n = {})\n",
                l.p50_ms, l.p90_ms, l.p99_ms, l.p999_ms, l.max_ms, l.count
            ));
        }
        for c in &self.checks {
            let mark = if c.ok { "ok  " } else { "FAIL" };
            s.push_str(&format!("  {mark} {:<20} {}\n", c.name, c.detail));
        }
        s.push_str(if self.passed() {
            "  result: PASS\n"
        } else {
            "  result: FAIL\n"
        });
        s
    }
}

/// A progress bar on a terminal; nothing otherwise (or with `--json`).
pub fn progress(len: u64, what: &str, visible: bool) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !visible || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} {elapsed}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_string());
    bar
}

/// One sample of the server's `/metrics` (Prometheus text format) by its exact name, labels
/// excluded; `None` if the server or the sample is not there.
pub async fn metric(target: &Target, name: &str) -> Option<f64> {
    let body = http_client()
        .get(target.url("/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    body.lines()
        .filter_map(|l| l.strip_prefix(name))
        .find_map(|v| v.strip_prefix(' '))
        .and_then(|v| v.trim().parse::<f64>().ok())
}

/// The HTTP client for WHIP/WHEP, `/metrics` and peers' HTTP APIs.
pub fn http_client() -> reqwest::Client {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    CLIENT
        .get_or_init(|| {
            let mut b = reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .pool_max_idle_per_host(64);
            for ca in tls::extra_roots() {
                b = b.add_root_certificate(ca);
            }
            b.build().expect("an HTTP client")
        })
        .clone()
}

/// CPU time (user + system, seconds) a process has used so far, from `/proc/<pid>/stat`.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; the fields after it are fixed.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    Some(ticks as f64 / hz.max(1) as f64)
}

/// The next size a search for the largest passing size tries (a chat rate, an audience):
/// doubling from `current` while every step passed, up to `cap`; after a failure, halfway
/// between the largest size that passed (`good`) and the last that failed (`bad`), until the
/// two are within 5 % (and at least `min_step`) of each other. `None`: the search is over.
pub fn next_probe(
    current: usize,
    good: Option<usize>,
    bad: Option<usize>,
    cap: usize,
    min_step: usize,
) -> Option<usize> {
    let lo = good.unwrap_or(0);
    let next = match bad {
        None if current >= cap => return None,
        None => current.saturating_mul(2).min(cap),
        Some(hi) if hi.saturating_sub(lo) <= (lo / 20).max(min_step) => return None,
        Some(hi) => lo + (hi - lo) / 2,
    };
    (next > 0).then_some(next)
}

#[cfg(test)]
mod tests {
    use super::{next_probe, SocketAddr, Target};

    #[test]
    fn viewers_go_to_the_addresses_in_turn_or_to_the_one_address() {
        let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:2".parse().unwrap();
        let mut t = Target {
            http: a,
            viewer_http: vec![a, b],
            grpc: String::new(),
            api_key: String::new(),
            tls: None,
        };
        let got: Vec<SocketAddr> = (0..4).map(|i| t.viewer_addr(i)).collect();
        assert_eq!(got, vec![a, b, a, b]);
        t.viewer_http.clear();
        assert_eq!(t.viewer_addr(3), a);
    }

    #[test]
    fn a_search_doubles_then_bisects_then_stops() {
        assert_eq!(next_probe(20, Some(20), None, 1000, 1), Some(40));
        assert_eq!(next_probe(640, Some(640), None, 1000, 1), Some(1000));
        assert_eq!(next_probe(1000, Some(1000), None, 1000, 1), None);
        assert_eq!(next_probe(320, Some(160), Some(320), 1000, 1), Some(240));
        assert_eq!(next_probe(168, Some(165), Some(170), 1000, 1), None);
        // Nothing passed: down towards zero, and no further.
        assert_eq!(next_probe(20, None, Some(20), 1000, 1), Some(10));
        assert_eq!(next_probe(1, None, Some(1), 1000, 1), None);
        assert_eq!(next_probe(400, Some(400), Some(412), 2000, 5), None);
    }
}
