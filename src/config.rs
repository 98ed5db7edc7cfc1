//! The server's typed configuration: flags, then `SHOWFLOOR_*` environment, then a TOML
//! file, then defaults — validated once at start-up.

use crate::model::Secret;
use crate::registration::limits::{Rate, RegistrationLimits};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Exit status for a bad configuration (EX_USAGE).
pub const EXIT_CONFIG: u8 = 64;

/// See `ServeArgs::write_delay_ms`; measured in BENCHMARKS.md (chat-storm).
pub const DEFAULT_WRITE_DELAY_MS: u64 = 40;
/// See `--media-shed-lag-ms` and `media/admission.rs`.
pub const DEFAULT_MEDIA_SHED_LAG_MS: u64 = 20;

#[derive(Debug, thiserror::Error)]
#[error("configuration error: {0}")]
pub struct ConfigError(pub String);

/// A URL with its credentials hidden, for messages — also when it does not parse.
pub(crate) fn redact(url: &str) -> String {
    let url = url.trim();
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(_) => url.to_string(),
        Err(_) => match url.split_once("://") {
            // Whatever sits before an `@` in the authority may be a password.
            Some((scheme, rest)) => {
                let authority_end = rest.find('/').unwrap_or(rest.len());
                match rest[..authority_end].rfind('@') {
                    Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
                    None => url.to_string(),
                }
            }
            None => url.to_string(),
        },
    }
}

/// `showfloor serve` flags. Every flag also reads `SHOWFLOOR_<NAME>` from the environment.
#[derive(clap::Args, Debug, Default, Clone)]
pub struct ServeArgs {
    /// TOML configuration file (same keys as the flags, with underscores).
    #[arg(long, env = "SHOWFLOOR_CONFIG")]
    pub config: Option<PathBuf>,
    /// HTTP + WebSocket listen address [default: 0.0.0.0:7880].
    #[arg(long, env = "SHOWFLOOR_HTTP_ADDR")]
    pub http_addr: Option<SocketAddr>,
    /// gRPC control-plane listen address [default: 0.0.0.0:7881].
    #[arg(long, env = "SHOWFLOOR_GRPC_ADDR")]
    pub grpc_addr: Option<SocketAddr>,
    /// PEM certificate chain: both ports speak TLS (https/wss, gRPC over TLS); reloaded with
    /// the key on SIGHUP. Needs --tls-key.
    #[arg(long, env = "SHOWFLOOR_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "SHOWFLOOR_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Directory of the embedded store [default: ./data].
    #[arg(long, env = "SHOWFLOOR_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Store backend: `sqlite` (embedded, in --data-dir) or `postgres` (at --postgres)
    /// [default: postgres if --postgres is given, else sqlite].
    #[arg(long, env = "SHOWFLOOR_STORE")]
    pub store: Option<StoreKind>,
    /// PostgreSQL URL for the `postgres` store: `postgres://USER:PASSWORD@HOST:PORT/DATABASE`,
    /// with libpq's `sslmode` (`disable`, `prefer` (default), `require`: encrypted, not
    /// verified; `verify-ca`/`verify-full`: verified against `sslrootcert=FILE.pem` or the
    /// system's roots). The schema is created or migrated at start.
    #[arg(long, env = "SHOWFLOOR_POSTGRES")]
    pub postgres: Option<Secret>,
    /// NATS server(s) with JetStream for a cluster: `nats://HOST:4222` (comma-separated for
    /// several; `tls://` for TLS; credentials as `nats://USER:PASSWORD@HOST`). Needs
    /// --postgres and an explicit --node-id unique to this node. Rooms are owned by leases
    /// and host commands reach a room's owner from any node.
    #[arg(long, env = "SHOWFLOOR_NATS")]
    pub nats: Option<Secret>,
    /// The address clients reach this node's HTTP port at (`HOST` or `HOST:PORT`; without a
    /// port, the one `--http-addr` listens on). Other nodes of a cluster redirect WHIP/WHEP
    /// requests for the rooms this node runs there.
    #[arg(long, env = "SHOWFLOOR_ADVERTISE")]
    pub advertise: Option<String>,
    /// Room lease time-to-live in a cluster, seconds: how long a room stays unowned after its
    /// owner dies. Every node must use the same [default: 5].
    #[arg(long, env = "SHOWFLOOR_LEASE_TTL_SECS")]
    pub lease_ttl_secs: Option<u64>,
    /// This node's name: it tags the session ids it hands out, so they stay unique across the
    /// nodes of a cluster. 1 to 64 characters of a-z, A-Z, 0-9, `.`, `_` or `-`
    /// [default: local].
    #[arg(long, env = "SHOWFLOOR_NODE_ID")]
    pub node_id: Option<String>,
    /// Host API key for the control plane (repeatable; env: comma-separated). At least 16
    /// characters.
    #[arg(long = "api-key", env = "SHOWFLOOR_API_KEYS", value_delimiter = ',')]
    pub api_keys: Vec<Secret>,
    /// Development mode: without a configured key, generate one and print it.
    #[arg(long, env = "SHOWFLOOR_DEV")]
    pub dev: bool,
    /// Most concurrent viewer connections [default: 20000].
    #[arg(long, env = "SHOWFLOOR_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Most WebSocket sessions, and most HTTP requests in progress, from one client address
    /// (behind a proxy on this host: the address it forwards); 0: no limit [default: 1000].
    #[arg(long, env = "SHOWFLOOR_MAX_CONNECTIONS_PER_IP")]
    pub max_connections_per_ip: Option<usize>,
    /// Whether clients on loopback (load tests, tools on this host) are held to
    /// --max-connections-per-ip too [default: false].
    #[arg(long, env = "SHOWFLOOR_LIMIT_LOOPBACK")]
    pub limit_loopback: Option<bool>,
    /// Largest viewer message in bytes; larger ones get an error event [default: 4096].
    #[arg(long, env = "SHOWFLOOR_MAX_MESSAGE_BYTES")]
    pub max_message_bytes: Option<usize>,
    /// Frames queued per viewer before it is closed as a slow consumer [default: 1024].
    #[arg(long, env = "SHOWFLOOR_OUTBOUND_QUEUE")]
    pub outbound_queue: Option<usize>,
    /// Write coalescing: a viewer connection that flushed less than this many milliseconds
    /// ago waits out the rest before its next write, so that under a burst each flush (one
    /// syscall) carries every frame queued meanwhile. An idle connection writes at once.
    /// 0 turns it off [default: 40].
    #[arg(long, env = "SHOWFLOOR_WRITE_DELAY_MS")]
    pub write_delay_ms: Option<u64>,
    /// Audience-log heartbeat per viewer, seconds [default: 60].
    #[arg(long, env = "SHOWFLOOR_HEARTBEAT_SECS")]
    pub heartbeat_secs: Option<u64>,
    /// Seconds an ended room with nobody attached stays loaded before its task stops (it is
    /// loaded again from the store when used) [default: 60].
    #[arg(long, env = "SHOWFLOOR_ENDED_ROOM_GRACE_SECS")]
    pub ended_room_grace_secs: Option<u64>,
    /// Seconds to wait for sessions to close at shutdown [default: 10].
    #[arg(long, env = "SHOWFLOOR_SHUTDOWN_GRACE_SECS")]
    pub shutdown_grace_secs: Option<u64>,
    /// The one UDP address all WebRTC media uses (WHIP and WHEP) [default: 0.0.0.0:7882].
    #[arg(long, env = "SHOWFLOOR_MEDIA_UDP_ADDR")]
    pub media_udp_addr: Option<SocketAddr>,
    /// The public address(es) of this machine when it sits behind a 1:1 NAT (a cloud VM's
    /// elastic IP, a Kubernetes node's external IP): WebRTC clients are told to send media
    /// there, at the media port, instead of to the machine's own (private) addresses of the
    /// same IP family. Comma-separated; the NAT must keep the port.
    #[arg(long, env = "SHOWFLOOR_MEDIA_PUBLIC_IP", value_delimiter = ',')]
    pub media_public_ip: Vec<std::net::IpAddr>,
    /// The UDP address a node of a cluster relays media to and from other nodes on (the
    /// cascade: a feed published here reaches other nodes' WHEP viewers through it). Other
    /// nodes send to the --advertise host at this port; open it between nodes only
    /// [default: 0.0.0.0:7883].
    #[arg(long, env = "SHOWFLOOR_RELAY_UDP_ADDR")]
    pub relay_udp_addr: Option<SocketAddr>,
    /// Where other nodes of the cluster reach this node's relay socket, `HOST:PORT`, when it
    /// is not the --advertise host at the relay port (a container's name on the cluster's
    /// network, a published port).
    #[arg(long, env = "SHOWFLOOR_RELAY_ADVERTISE")]
    pub relay_advertise: Option<String>,
    /// Most concurrent WHEP viewers on this node; more get 503 [default: 2000].
    #[arg(long, env = "SHOWFLOOR_MAX_MEDIA_SUBSCRIBERS")]
    pub max_media_subscribers: Option<usize>,
    /// New WHEP viewers get 503 with Retry-After while the node runs due work later than
    /// this many ms, probe after probe (overloaded); 0 admits whatever the load
    /// [default: 20].
    #[arg(long, env = "SHOWFLOOR_MEDIA_SHED_LAG_MS")]
    pub media_shed_lag_ms: Option<u64>,
    /// A WHIP publisher that sends no media for this long is disconnected [default: 30].
    #[arg(long, env = "SHOWFLOOR_PUBLISHER_IDLE_SECS")]
    pub publisher_idle_secs: Option<u64>,
    /// A room's media state with no WHIP/WHEP session, feed or request on this node for this
    /// long is dropped from memory (made again on the next request) [default: 30].
    #[arg(long, env = "SHOWFLOOR_MEDIA_ROOM_IDLE_SECS")]
    pub media_room_idle_secs: Option<u64>,
    /// Whether CRM webhooks may be sent to loopback, private and link-local addresses (a
    /// receiver on this host or this network). Off by default, so a host's webhook URL
    /// cannot reach the server's own network; on with --dev [default: false].
    #[arg(long, env = "SHOWFLOOR_WEBHOOK_ALLOW_PRIVATE")]
    pub webhook_allow_private: Option<bool>,
    /// The first webhook retry's delay in ms; later ones scale from it (docs/webhooks.md).
    /// For tests [default: 10000].
    #[arg(long, env = "SHOWFLOOR_WEBHOOK_RETRY_BASE_MS", hide = true)]
    pub webhook_retry_base_ms: Option<u64>,
    /// Self-registrations one client address may make at once (POST
    /// /api/rooms/{room}/registrations); then 429 [default: 10].
    #[arg(long, env = "SHOWFLOOR_REGISTRATIONS_PER_ADDRESS_BURST")]
    pub registrations_per_address_burst: Option<u32>,
    /// ...refilled at this many per minute [default: 6].
    #[arg(long, env = "SHOWFLOOR_REGISTRATIONS_PER_ADDRESS_PER_MINUTE")]
    pub registrations_per_address_per_minute: Option<u32>,
    /// Self-registrations one room takes at once from everyone (on this node); then 429
    /// [default: 300].
    #[arg(long, env = "SHOWFLOOR_REGISTRATIONS_PER_ROOM_BURST")]
    pub registrations_per_room_burst: Option<u32>,
    /// ...refilled at this many per minute [default: 1200].
    #[arg(long, env = "SHOWFLOOR_REGISTRATIONS_PER_ROOM_PER_MINUTE")]
    pub registrations_per_room_per_minute: Option<u32>,
}

/// Which store backend holds the rooms.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// Embedded SQLite in the data directory: nothing to install.
    #[default]
    Sqlite,
    /// PostgreSQL at `--postgres`: what the nodes of a cluster share.
    Postgres,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    http_addr: Option<SocketAddr>,
    grpc_addr: Option<SocketAddr>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    data_dir: Option<PathBuf>,
    store: Option<StoreKind>,
    postgres: Option<Secret>,
    nats: Option<Secret>,
    advertise: Option<String>,
    lease_ttl_secs: Option<u64>,
    node_id: Option<String>,
    api_keys: Option<Vec<Secret>>,
    dev: Option<bool>,
    max_connections: Option<usize>,
    max_connections_per_ip: Option<usize>,
    limit_loopback: Option<bool>,
    max_message_bytes: Option<usize>,
    outbound_queue: Option<usize>,
    write_delay_ms: Option<u64>,
    heartbeat_secs: Option<u64>,
    ended_room_grace_secs: Option<u64>,
    shutdown_grace_secs: Option<u64>,
    media_udp_addr: Option<SocketAddr>,
    #[serde(default)]
    media_public_ip: Vec<std::net::IpAddr>,
    relay_udp_addr: Option<SocketAddr>,
    relay_advertise: Option<String>,
    max_media_subscribers: Option<usize>,
    media_shed_lag_ms: Option<u64>,
    publisher_idle_secs: Option<u64>,
    media_room_idle_secs: Option<u64>,
    webhook_allow_private: Option<bool>,
    webhook_retry_base_ms: Option<u64>,
    registrations_per_address_burst: Option<u32>,
    registrations_per_address_per_minute: Option<u32>,
    registrations_per_room_burst: Option<u32>,
    registrations_per_room_per_minute: Option<u32>,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub http_addr: SocketAddr,
    pub grpc_addr: SocketAddr,
    pub data_dir: PathBuf,
    pub store: StoreKind,
    /// The PostgreSQL URL (a secret: it may hold a password); set when `store` is Postgres.
    pub postgres: Option<Secret>,
    /// NATS URL(s) (a secret: they may hold credentials); set on a node of a cluster.
    pub nats: Option<Secret>,
    pub advertise: Option<String>,
    pub lease_ttl_secs: u64,
    /// Whether `node_id` was set (a cluster node must be named, not left `local`).
    pub node_id_set: bool,
    pub node_id: String,
    /// Certificate and key files: both ports speak TLS.
    pub tls: Option<(PathBuf, PathBuf)>,
    pub api_keys: Vec<Secret>,
    pub dev: bool,
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    pub limit_loopback: bool,
    pub max_message_bytes: usize,
    pub outbound_queue: usize,
    pub write_delay_ms: u64,
    pub heartbeat_secs: u64,
    pub ended_room_grace_secs: u64,
    pub shutdown_grace_secs: u64,
    pub media_udp_addr: SocketAddr,
    pub media_public_ips: Vec<std::net::IpAddr>,
    pub relay_udp_addr: SocketAddr,
    pub relay_advertise: Option<String>,
    pub max_media_subscribers: usize,
    /// 0: no shedding by load.
    pub media_shed_lag_ms: u64,
    pub publisher_idle_secs: u64,
    pub media_room_idle_secs: u64,
    /// How CRM webhooks are sent.
    pub webhooks: crate::webhooks::Settings,
    /// Rate limits of the registration endpoint (defaults in `RegistrationLimits`).
    pub registration_limits: RegistrationLimits,
}

impl Config {
    /// Defaults for tests: ephemeral loopback ports, the given data dir, one key.
    pub fn for_tests(data_dir: PathBuf, api_key: &str) -> Config {
        Config {
            tls: None,
            http_addr: "127.0.0.1:0".parse().expect("literal"),
            grpc_addr: "127.0.0.1:0".parse().expect("literal"),
            data_dir,
            store: StoreKind::Sqlite,
            postgres: None,
            nats: None,
            advertise: None,
            lease_ttl_secs: 5,
            node_id_set: true,
            node_id: "test".into(),
            api_keys: vec![Secret::new(api_key)],
            dev: false,
            max_connections: 20_000,
            max_connections_per_ip: 1000,
            limit_loopback: false,
            max_message_bytes: 4096,
            outbound_queue: 1024,
            write_delay_ms: DEFAULT_WRITE_DELAY_MS,
            heartbeat_secs: 60,
            ended_room_grace_secs: 60,
            shutdown_grace_secs: 5,
            media_udp_addr: "127.0.0.1:0".parse().expect("literal"),
            media_public_ips: Vec::new(),
            relay_udp_addr: "127.0.0.1:0".parse().expect("literal"),
            relay_advertise: None,
            max_media_subscribers: 2000,
            // Off: tests share a busy machine; tests/media_shedding.rs turns it on.
            media_shed_lag_ms: 0,
            publisher_idle_secs: 30,
            media_room_idle_secs: 30,
            webhooks: crate::webhooks::Settings {
                allow_private: true,
                schedule: crate::store::outbox::Schedule { base_ms: 200 },
                lead_check: std::time::Duration::from_millis(500),
            },
            registration_limits: RegistrationLimits::default(),
        }
    }

    pub fn from_args(args: ServeArgs) -> Result<Config, ConfigError> {
        let file = match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    ConfigError(format!("cannot read config file {}: {e}", path.display()))
                })?;
                toml::from_str::<FileConfig>(&text)
                    .map_err(|e| ConfigError(format!("config file {}: {e}", path.display())))?
            }
            None => FileConfig::default(),
        };
        let api_keys = if !args.api_keys.is_empty() {
            args.api_keys
        } else {
            file.api_keys.unwrap_or_default()
        };
        let postgres = args
            .postgres
            .or(file.postgres)
            .filter(|u| !u.expose().trim().is_empty());
        let c = Config {
            tls: match (
                args.tls_cert.or(file.tls_cert),
                args.tls_key.or(file.tls_key),
            ) {
                (Some(c), Some(k)) => Some((c, k)),
                (None, None) => None,
                _ => {
                    return Err(ConfigError(
                        "tls_cert and tls_key go together: give both, or neither".into(),
                    ))
                }
            },
            http_addr: args
                .http_addr
                .or(file.http_addr)
                .unwrap_or_else(|| "0.0.0.0:7880".parse().expect("literal")),
            grpc_addr: args
                .grpc_addr
                .or(file.grpc_addr)
                .unwrap_or_else(|| "0.0.0.0:7881".parse().expect("literal")),
            data_dir: args
                .data_dir
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from("./data")),
            store: args.store.or(file.store).unwrap_or(if postgres.is_some() {
                StoreKind::Postgres
            } else {
                StoreKind::Sqlite
            }),
            postgres,
            nats: args
                .nats
                .or(file.nats)
                .filter(|u| !u.expose().trim().is_empty()),
            advertise: args.advertise.or(file.advertise),
            lease_ttl_secs: args.lease_ttl_secs.or(file.lease_ttl_secs).unwrap_or(5),
            node_id_set: args.node_id.is_some() || file.node_id.is_some(),
            node_id: args
                .node_id
                .or(file.node_id)
                .unwrap_or_else(|| "local".into()),
            api_keys: api_keys
                .into_iter()
                .map(|k| Secret::new(k.expose().trim()))
                .filter(|k| !k.expose().is_empty())
                .collect(),
            dev: args.dev || file.dev.unwrap_or(false),
            max_connections: args
                .max_connections
                .or(file.max_connections)
                .unwrap_or(20_000),
            max_connections_per_ip: args
                .max_connections_per_ip
                .or(file.max_connections_per_ip)
                .unwrap_or(1000),
            limit_loopback: args.limit_loopback.or(file.limit_loopback).unwrap_or(false),
            max_message_bytes: args
                .max_message_bytes
                .or(file.max_message_bytes)
                .unwrap_or(4096),
            outbound_queue: args.outbound_queue.or(file.outbound_queue).unwrap_or(1024),
            write_delay_ms: args
                .write_delay_ms
                .or(file.write_delay_ms)
                .unwrap_or(DEFAULT_WRITE_DELAY_MS),
            heartbeat_secs: args.heartbeat_secs.or(file.heartbeat_secs).unwrap_or(60),
            ended_room_grace_secs: args
                .ended_room_grace_secs
                .or(file.ended_room_grace_secs)
                .unwrap_or(60),
            shutdown_grace_secs: args
                .shutdown_grace_secs
                .or(file.shutdown_grace_secs)
                .unwrap_or(10),
            media_udp_addr: args
                .media_udp_addr
                .or(file.media_udp_addr)
                .unwrap_or_else(|| "0.0.0.0:7882".parse().expect("literal")),
            media_public_ips: if args.media_public_ip.is_empty() {
                file.media_public_ip
            } else {
                args.media_public_ip
            },
            relay_udp_addr: args
                .relay_udp_addr
                .or(file.relay_udp_addr)
                .unwrap_or_else(|| "0.0.0.0:7883".parse().expect("literal")),
            relay_advertise: args.relay_advertise.or(file.relay_advertise),
            max_media_subscribers: args
                .max_media_subscribers
                .or(file.max_media_subscribers)
                .unwrap_or(2000),
            media_shed_lag_ms: args
                .media_shed_lag_ms
                .or(file.media_shed_lag_ms)
                .unwrap_or(DEFAULT_MEDIA_SHED_LAG_MS),
            publisher_idle_secs: args
                .publisher_idle_secs
                .or(file.publisher_idle_secs)
                .unwrap_or(30),
            media_room_idle_secs: args
                .media_room_idle_secs
                .or(file.media_room_idle_secs)
                .unwrap_or(30),
            webhooks: crate::webhooks::Settings {
                allow_private: args
                    .webhook_allow_private
                    .or(file.webhook_allow_private)
                    .unwrap_or(args.dev || file.dev.unwrap_or(false)),
                schedule: crate::store::outbox::Schedule {
                    base_ms: args
                        .webhook_retry_base_ms
                        .or(file.webhook_retry_base_ms)
                        .unwrap_or(10_000)
                        .clamp(1, 3_600_000) as i64,
                },
                lead_check: std::time::Duration::from_secs(30),
            },
            registration_limits: {
                let d = RegistrationLimits::default();
                RegistrationLimits {
                    per_address: Rate {
                        burst: args
                            .registrations_per_address_burst
                            .or(file.registrations_per_address_burst)
                            .unwrap_or(d.per_address.burst),
                        per_minute: args
                            .registrations_per_address_per_minute
                            .or(file.registrations_per_address_per_minute)
                            .unwrap_or(d.per_address.per_minute),
                    },
                    per_room: Rate {
                        burst: args
                            .registrations_per_room_burst
                            .or(file.registrations_per_room_burst)
                            .unwrap_or(d.per_room.burst),
                        per_minute: args
                            .registrations_per_room_per_minute
                            .or(file.registrations_per_room_per_minute)
                            .unwrap_or(d.per_room.per_minute),
                    },
                    ..d
                }
            },
        };
        c.validate()?;
        Ok(c)
    }

    /// Where clients reach this node, `HOST:PORT`, from `--advertise`: as given when it names
    /// a port, else with the HTTP port this node listens on. `None` without `--advertise`.
    pub fn advertised_address(&self, http_port: u16) -> Option<String> {
        let a = self.advertise.as_deref()?.trim();
        if a.is_empty() {
            return None;
        }
        if a.parse::<std::net::SocketAddr>().is_ok() {
            return Some(a.to_string());
        }
        if let Some((host, port)) = a.rsplit_once(':') {
            let one_host = !host.contains(':') || (host.starts_with('[') && host.ends_with(']'));
            if !host.is_empty() && one_host && port.parse::<u16>().is_ok() {
                return Some(a.to_string());
            }
        }
        // A bare IPv6 address needs its brackets before a port.
        if a.parse::<std::net::Ipv6Addr>().is_ok() {
            return Some(format!("[{a}]:{http_port}"));
        }
        Some(format!("{a}:{http_port}"))
    }

    /// Where other nodes send this node's relay datagrams, `HOST:PORT`: --relay-advertise,
    /// else the --advertise host at the relay socket's port. `None`: media is not relayed
    /// to or from this node (WHEP requests for rooms run elsewhere are redirected there).
    pub fn relay_address(&self, relay_port: u16) -> Option<String> {
        if let Some(a) = self.relay_advertise.as_deref().map(str::trim) {
            return (!a.is_empty()).then(|| a.to_string());
        }
        let advertised = self.advertised_address(0)?;
        let (host, _) = advertised.rsplit_once(':')?;
        Some(format!("{host}:{relay_port}"))
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        match (self.store, &self.postgres) {
            (StoreKind::Postgres, None) => {
                return Err(ConfigError(
                    "store postgres needs --postgres postgres://USER@HOST/DATABASE \
                     (or SHOWFLOOR_POSTGRES)"
                        .into(),
                ))
            }
            (StoreKind::Postgres, Some(url)) => {
                crate::store::postgres::PgTarget::parse(url.expose()).map_err(|e| {
                    let why = std::error::Error::source(&e).map(|s| s.to_string());
                    ConfigError(format!("--postgres: {}", why.unwrap_or(e.to_string())))
                })?;
            }
            (StoreKind::Sqlite, Some(_)) => {
                return Err(ConfigError(
                    "--postgres is given but the store is sqlite: drop one of them".into(),
                ))
            }
            (StoreKind::Sqlite, None) => {}
        }
        if let Some(nats) = &self.nats {
            if self.store != StoreKind::Postgres {
                return Err(ConfigError(
                    "--nats makes this node part of a cluster, whose nodes share PostgreSQL: \
                     give --postgres too"
                        .into(),
                ));
            }
            if !self.node_id_set {
                return Err(ConfigError(
                    "--nats needs --node-id: a name unique to this node in the cluster".into(),
                ));
            }
            for part in nats.expose().split(',') {
                part.trim().parse::<async_nats::ServerAddr>().map_err(|e| {
                    ConfigError(format!("--nats: {:?} is not a NATS URL: {e}", redact(part)))
                })?;
            }
            if !(1..=60).contains(&self.lease_ttl_secs) {
                return Err(ConfigError(format!(
                    "lease_ttl_secs must be 1 to 60 (got {})",
                    self.lease_ttl_secs
                )));
            }
        } else if self.advertise.is_some() {
            return Err(ConfigError(
                "--advertise is for a node of a cluster: give --nats too".into(),
            ));
        }
        let range = |name: &str, v: u64, lo: u64, hi: u64| {
            if v < lo || v > hi {
                Err(ConfigError(format!(
                    "{name} must be {lo} to {hi} (got {v})"
                )))
            } else {
                Ok(())
            }
        };
        range("max_connections", self.max_connections as u64, 1, 1_000_000)?;
        range(
            "max_message_bytes",
            self.max_message_bytes as u64,
            64,
            65_536,
        )?;
        range("outbound_queue", self.outbound_queue as u64, 16, 65_536)?;
        range("write_delay_ms", self.write_delay_ms, 0, 1000)?;
        range("heartbeat_secs", self.heartbeat_secs, 1, 3600)?;
        range(
            "ended_room_grace_secs",
            self.ended_room_grace_secs,
            1,
            86_400,
        )?;
        range("shutdown_grace_secs", self.shutdown_grace_secs, 0, 300)?;
        range(
            "max_media_subscribers",
            self.max_media_subscribers as u64,
            1,
            100_000,
        )?;
        range("media_shed_lag_ms", self.media_shed_lag_ms, 0, 10_000)?;
        range("publisher_idle_secs", self.publisher_idle_secs, 1, 3600)?;
        range("media_room_idle_secs", self.media_room_idle_secs, 1, 86_400)?;
        if let Some(ip) = self
            .media_public_ips
            .iter()
            .find(|ip| ip.is_unspecified() || ip.is_multicast())
        {
            return Err(ConfigError(format!(
                "media_public_ip {ip} is not an address clients can send media to"
            )));
        }
        let l = &self.registration_limits;
        for (name, v) in [
            ("registrations_per_address_burst", l.per_address.burst),
            (
                "registrations_per_address_per_minute",
                l.per_address.per_minute,
            ),
            ("registrations_per_room_burst", l.per_room.burst),
            ("registrations_per_room_per_minute", l.per_room.per_minute),
        ] {
            range(name, u64::from(v), 1, 1_000_000)?;
        }
        let node_id_ok = (1..=64).contains(&self.node_id.len())
            && self
                .node_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if !node_id_ok {
            return Err(ConfigError(format!(
                "node_id {:?} must be 1 to 64 characters of a-z, A-Z, 0-9, `.`, `_` or `-`",
                self.node_id
            )));
        }
        if let Some(k) = self.api_keys.iter().find(|k| k.expose().len() < 16) {
            return Err(ConfigError(format!(
                "API keys must be at least 16 characters (one has {})",
                k.expose().len()
            )));
        }
        if self.api_keys.is_empty() && !self.dev {
            return Err(ConfigError(
                "no host API key configured: pass --api-key (or SHOWFLOOR_API_KEYS, or \
                 api_keys in the config file), or run with --dev to generate one"
                    .into(),
            ));
        }
        if self.http_addr == self.grpc_addr && self.http_addr.port() != 0 {
            return Err(ConfigError(format!(
                "http_addr and grpc_addr are both {}",
                self.http_addr
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn the_relay_address_is_the_advertised_host_at_the_relay_port() {
        let mut c = Config::for_tests(PathBuf::from("/tmp"), "k");
        assert_eq!(c.relay_address(7883), None);
        c.advertise = Some("10.0.0.5:8080".into());
        assert_eq!(c.relay_address(7883).as_deref(), Some("10.0.0.5:7883"));
        c.advertise = Some("fe80::1".into());
        assert_eq!(c.relay_address(7883).as_deref(), Some("[fe80::1]:7883"));
        c.relay_advertise = Some("node-2:9000".into());
        assert_eq!(c.relay_address(7883).as_deref(), Some("node-2:9000"));
    }

    #[test]
    fn the_advertised_address_gets_the_http_port_unless_it_names_one() {
        let mut c = Config::for_tests(std::path::PathBuf::from("/tmp"), "k");
        assert_eq!(c.advertised_address(7880), None);
        for (given, expected) in [
            ("10.0.0.1", "10.0.0.1:7880"),
            ("10.0.0.1:9000", "10.0.0.1:9000"),
            ("node-1.example", "node-1.example:7880"),
            ("node-1.example:443", "node-1.example:443"),
            ("::1", "[::1]:7880"),
            ("[::1]:9000", "[::1]:9000"),
        ] {
            c.advertise = Some(given.into());
            assert_eq!(
                c.advertised_address(7880).as_deref(),
                Some(expected),
                "{given}"
            );
        }
    }
    use super::*;

    #[test]
    fn no_key_without_dev_is_refused() {
        let e = Config::from_args(ServeArgs::default()).unwrap_err();
        assert!(e.0.contains("--dev"), "{e}");
        let c = Config::from_args(ServeArgs {
            dev: true,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.http_addr.port(), 7880);
        assert_eq!(c.grpc_addr.port(), 7881);
        assert_eq!(c.media_udp_addr.port(), 7882);
    }

    #[test]
    fn file_values_apply_and_flags_win() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.toml");
        std::fs::write(
            &path,
            "api_keys = [\"0123456789abcdef\"]\nmax_connections = 10\noutbound_queue = 64\n",
        )
        .unwrap();
        let c = Config::from_args(ServeArgs {
            config: Some(path.clone()),
            max_connections: Some(20),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.max_connections, 20);
        assert_eq!(c.outbound_queue, 64);
        assert_eq!(c.api_keys, vec![Secret::new("0123456789abcdef")]);
        std::fs::write(&path, "max_conections = 3\n").unwrap();
        let e = Config::from_args(ServeArgs {
            config: Some(path),
            dev: true,
            ..Default::default()
        })
        .unwrap_err();
        assert!(e.0.contains("max_conections"), "{e}");
    }

    #[test]
    fn postgres_url_picks_the_store_and_bad_ones_are_refused_without_the_password() {
        let with = |store, url: &str| {
            Config::from_args(ServeArgs {
                dev: true,
                store,
                postgres: Some(Secret::new(url)),
                ..Default::default()
            })
        };
        let c = with(None, "postgres://show:pw@db:5432/shows?sslmode=require").unwrap();
        assert_eq!(c.store, StoreKind::Postgres);
        assert!(!format!("{c:?}").contains("pw@"), "{c:?}");
        for (store, url, says) in [
            (None, "mysql://db/shows", "postgres://"),
            (None, "postgres://show:hunter2@db", "names no database"),
            (None, "postgres://db/x?sslmode=always", "sslmode=always"),
            (Some(StoreKind::Sqlite), "postgres://db/x", "drop one"),
        ] {
            let e = with(store, url).unwrap_err();
            assert!(e.0.contains(says), "{url}: {e}");
            assert!(!e.0.contains("hunter2"), "{e}");
        }
        let e = Config::from_args(ServeArgs {
            dev: true,
            store: Some(StoreKind::Postgres),
            ..Default::default()
        })
        .unwrap_err();
        assert!(e.0.contains("--postgres"), "{e}");
    }

    #[test]
    fn a_cluster_node_needs_postgres_a_name_and_a_nats_url_and_says_so() {
        let node = |nats: &str, postgres: Option<&str>, node_id: Option<&str>| {
            Config::from_args(ServeArgs {
                dev: true,
                nats: Some(Secret::new(nats)),
                postgres: postgres.map(Secret::new),
                node_id: node_id.map(String::from),
                ..Default::default()
            })
        };
        let c = node(
            "nats://a:4222,nats://b:4222",
            Some("postgres://db/x"),
            Some("n1"),
        )
        .unwrap();
        assert_eq!(c.store, StoreKind::Postgres);
        assert_eq!(c.lease_ttl_secs, 5);
        for (e, says) in [
            (node("nats://a:4222", None, Some("n1")), "--postgres"),
            (
                node("nats://a:4222", Some("postgres://db/x"), None),
                "--node-id",
            ),
            (
                node(
                    "nats://u:hunter2@a:4222:99",
                    Some("postgres://db/x"),
                    Some("n1"),
                ),
                "not a NATS URL",
            ),
        ] {
            let e = e.unwrap_err();
            assert!(e.0.contains(says), "{e}");
            assert!(!e.0.contains("hunter2"), "{e}");
        }
        let e = Config::from_args(ServeArgs {
            dev: true,
            advertise: Some("10.0.0.1".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(e.0.contains("--nats"), "{e}");
    }

    #[test]
    fn out_of_range_values_are_refused() {
        let e = Config::from_args(ServeArgs {
            dev: true,
            outbound_queue: Some(1),
            ..Default::default()
        })
        .unwrap_err();
        assert!(e.0.contains("outbound_queue"), "{e}");
        let e = Config::from_args(ServeArgs {
            api_keys: vec!["short".into()],
            ..Default::default()
        })
        .unwrap_err();
        assert!(e.0.contains("16"), "{e}");
    }
}
