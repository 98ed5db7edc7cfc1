//! Prometheus metrics of the node, served as text on `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GrpcLabels {
    pub method: String,
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CloseLabels {
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DependencyLabels {
    /// `store` or `nats`.
    pub dependency: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WebhookLabels {
    /// `delivered`, `retry` (failed, tried again later) or `failed` (no attempt left).
    pub outcome: String,
}

pub struct Metrics {
    registry: Registry,
    pub connections: Gauge,
    pub rooms: Gauge,
    pub rooms_followed: Gauge,
    pub resumes_replayed_here: Counter,
    pub room_restarts: Counter,
    pub room_write_waits: Counter,
    pub frames_sent: Counter,
    pub ws_flushes: Counter,
    pub queue_drops: Counter,
    pub slow_consumer_closes: Counter,
    pub ws_closes: Family<CloseLabels, Counter>,
    pub grpc_calls: Family<GrpcLabels, Counter>,
    pub media_publishers: Gauge,
    pub media_viewers: Gauge,
    pub media_rooms: Gauge,
    pub media_rtp_forwarded: Counter,
    pub media_relay_sent: Counter,
    pub media_relay_received: Counter,
    pub media_relay_resent: Counter,
    pub media_rtp_dropped: Counter,
    pub media_keyframe_requests: Counter,
    pub media_switches: Counter,
    pub media_viewers_shed: Counter,
    /// The largest lateness of the runtime's load probe over the last second (`media/admission.rs`).
    pub runtime_lag: Gauge<f64, AtomicU64>,
    pub dependency_up: Family<DependencyLabels, Gauge>,
    pub webhook_attempts: Family<WebhookLabels, Counter>,
    /// Set from the runtime on every scrape (see [`Metrics::render`]).
    tokio_alive_tasks: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("showfloor");
        let connections = Gauge::default();
        let rooms = Gauge::default();
        let rooms_followed = Gauge::default();
        let resumes_replayed_here = Counter::default();
        let room_restarts = Counter::default();
        let room_write_waits = Counter::default();
        let frames_sent = Counter::default();
        let ws_flushes = Counter::default();
        let queue_drops = Counter::default();
        let slow_consumer_closes = Counter::default();
        let ws_closes = Family::<CloseLabels, Counter>::default();
        let grpc_calls = Family::<GrpcLabels, Counter>::default();
        let media_publishers = Gauge::default();
        let media_viewers = Gauge::default();
        let media_rooms = Gauge::default();
        let media_rtp_forwarded = Counter::default();
        let media_relay_sent = Counter::default();
        let media_relay_received = Counter::default();
        let media_relay_resent = Counter::default();
        let media_rtp_dropped = Counter::default();
        let media_keyframe_requests = Counter::default();
        let media_switches = Counter::default();
        let media_viewers_shed = Counter::default();
        let runtime_lag = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "connections",
            "Open viewer WebSocket connections",
            connections.clone(),
        );
        registry.register(
            "rooms",
            "Rooms running on this node (in a cluster: the rooms it owns)",
            rooms.clone(),
        );
        registry.register(
            "rooms_followed",
            "Rooms another node owns whose events this node follows for viewers it serves",
            rooms_followed.clone(),
        );
        registry.register(
            "resumes_replayed_here",
            "Viewers of rooms another node owns that resumed with the missed events replayed \
             from this node's own window (the owner sent only the resumed welcome)",
            resumes_replayed_here.clone(),
        );
        let dependency_up = Family::<DependencyLabels, Gauge>::default();
        registry.register(
            "dependency_up",
            "1 while a service the node needs answers (the store; NATS in a cluster), else 0; \
             checked every 5 s",
            dependency_up.clone(),
        );
        registry.register(
            "room_restarts",
            "Room tasks restarted from the store after a panic",
            room_restarts.clone(),
        );
        registry.register(
            "room_write_waits",
            "Times a room found all its write slots taken (WRITES_IN_FLIGHT batches not yet durable) and stopped taking input until one landed",
            room_write_waits.clone(),
        );
        registry.register(
            "frames_sent",
            "WebSocket frames written to viewers",
            frames_sent.clone(),
        );
        registry.register(
            "ws_flushes",
            "Writes to viewer sockets (frames_sent / ws_flushes = frames per write)",
            ws_flushes.clone(),
        );
        registry.register(
            "queue_drops",
            "Frames dropped because a bounded queue was full",
            queue_drops.clone(),
        );
        registry.register(
            "slow_consumer_closes",
            "Viewers closed with 4008 because they stopped reading",
            slow_consumer_closes.clone(),
        );
        registry.register(
            "ws_closes",
            "Viewer connections closed by the server, by close code",
            ws_closes.clone(),
        );
        registry.register(
            "grpc_calls",
            "Control-plane calls by method and status code",
            grpc_calls.clone(),
        );
        registry.register(
            "media_publishers",
            "WHIP sessions (brand presenters) on this node",
            media_publishers.clone(),
        );
        registry.register(
            "media_viewers",
            "WHEP sessions (program viewers) on this node",
            media_viewers.clone(),
        );
        registry.register(
            "media_rooms",
            "Rooms whose media state this node holds (made by a WHIP/WHEP request, dropped \
             after --media-room-idle-secs without a session, feed or request)",
            media_rooms.clone(),
        );
        registry.register(
            "media_rtp_forwarded",
            "RTP packets queued to WHEP viewers",
            media_rtp_forwarded.clone(),
        );
        registry.register(
            "media_relay_sent",
            "RTP packets of this node's own feeds sent to other nodes' relay sockets",
            media_relay_sent.clone(),
        );
        registry.register(
            "media_relay_received",
            "RTP packets of feeds published on other nodes received on the relay socket",
            media_relay_received.clone(),
        );
        registry.register(
            "media_relay_resent",
            "RTP packets of this node's own feeds sent again to another node that missed them \
             (its NACK)",
            media_relay_resent.clone(),
        );
        registry.register(
            "media_rtp_dropped",
            "RTP packets dropped because a viewer's bounded queue was full",
            media_rtp_dropped.clone(),
        );
        registry.register(
            "media_keyframe_requests",
            "PLIs sent to publishers (switches, new viewers, viewer requests, drops)",
            media_keyframe_requests.clone(),
        );
        registry.register(
            "media_switches",
            "Program source changes (brand switches, feeds starting or ending)",
            media_switches.clone(),
        );
        registry.register(
            "media_viewers_shed",
            "WHEP viewers refused with 503 because the node was overloaded (its load probe ran \
             later than --media-shed-lag-ms several times in a row)",
            media_viewers_shed.clone(),
        );
        registry.register(
            "runtime_lag_seconds",
            "Largest delay over the last second between when the runtime's load probe was due \
             and when it ran: near 0 while the node keeps up, rising as it saturates",
            runtime_lag.clone(),
        );
        let webhook_attempts = Family::<WebhookLabels, Counter>::default();
        registry.register(
            "webhook_attempts",
            "CRM webhook deliveries attempted by this node, by outcome",
            webhook_attempts.clone(),
        );
        let tokio_alive_tasks = Gauge::default();
        registry.register(
            "tokio_alive_tasks",
            "Tasks alive in the tokio runtime that serves /metrics (the node's runtime); a \
             steady climb under a steady audience is a task leak",
            tokio_alive_tasks.clone(),
        );
        Metrics {
            registry,
            tokio_alive_tasks,
            dependency_up,
            webhook_attempts,
            media_publishers,
            media_viewers,
            media_rooms,
            media_rtp_forwarded,
            media_relay_sent,
            media_relay_received,
            media_relay_resent,
            media_rtp_dropped,
            media_keyframe_requests,
            media_switches,
            media_viewers_shed,
            runtime_lag,
            connections,
            rooms,
            rooms_followed,
            resumes_replayed_here,
            room_restarts,
            room_write_waits,
            frames_sent,
            ws_flushes,
            queue_drops,
            slow_consumer_closes,
            ws_closes,
            grpc_calls,
        }
    }

    /// Counts a webhook attempt's outcome.
    pub fn webhook_attempt(&self, outcome: &str) {
        self.webhook_attempts
            .get_or_create(&WebhookLabels {
                outcome: outcome.to_string(),
            })
            .inc();
    }

    /// Records whether `dependency` answered its last check.
    pub fn dependency(&self, dependency: &str, up: bool) {
        self.dependency_up
            .get_or_create(&DependencyLabels {
                dependency: dependency.to_string(),
            })
            .set(i64::from(up));
    }

    pub fn grpc(&self, method: &str, code: tonic::Code) {
        self.grpc_calls
            .get_or_create(&GrpcLabels {
                method: method.to_string(),
                code: format!("{code:?}"),
            })
            .inc();
    }

    pub fn closed(&self, code: u16) {
        self.ws_closes
            .get_or_create(&CloseLabels {
                code: code.to_string(),
            })
            .inc();
    }

    pub fn render(&self) -> String {
        // Read when scraped: the runtime counts its tasks itself, so nothing needs updating
        // on the hot paths. Outside a runtime (a unit test) the gauge keeps its last value.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            self.tokio_alive_tasks
                .set(i64::try_from(rt.metrics().num_alive_tasks()).unwrap_or(i64::MAX));
        }
        let mut out = String::new();
        // Encoding into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        // The standard process metrics: memory per connection (the load harness), and open
        // files against their limit (each viewer holds a socket).
        let mut process = String::new();
        let mut gauge = |name: &str, help: &str, value: Option<u64>| {
            if let Some(v) = value {
                process.push_str(&format!(
                    "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}\n"
                ));
            }
        };
        gauge(
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            resident_bytes(),
        );
        gauge(
            "process_open_fds",
            "Number of open file descriptors.",
            std::fs::read_dir("/proc/self/fd")
                .ok()
                .map(|d| d.count() as u64),
        );
        gauge(
            "process_max_fds",
            "Maximum number of open file descriptors.",
            rlimit::Resource::NOFILE.get().ok().map(|(soft, _)| soft),
        );
        let at = out.rfind("# EOF").unwrap_or(out.len());
        out.insert_str(at, &process);
        out
    }
}

/// The process's resident set size, from `/proc/self/status` (Linux).
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::Metrics;

    fn alive_tasks(scrape: &str) -> i64 {
        scrape
            .lines()
            .find_map(|l| l.strip_prefix("showfloor_tokio_alive_tasks "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no showfloor_tokio_alive_tasks sample in:\n{scrape}"))
    }

    #[tokio::test]
    async fn the_scrape_counts_the_runtime_s_live_tasks() {
        let m = Metrics::new();
        let before = alive_tasks(&m.render());
        let parked: Vec<_> = (0..5)
            .map(|_| tokio::spawn(std::future::pending::<()>()))
            .collect();
        assert_eq!(alive_tasks(&m.render()), before + 5);
        for t in parked {
            t.abort();
            let _ = t.await;
        }
        assert_eq!(alive_tasks(&m.render()), before);
    }
}
