//! Builds the server from a config: store, bus, hub, media (WHIP/WHEP on the HTTP listener,
//! one UDP port), HTTP/WebSocket listener (with the browser pages and grpc-web) and gRPC
//! listener; drains them on shutdown.

use crate::auth::{self, HostKeys};
use crate::bus::LocalBus;
use crate::cluster::{
    commands, viewers, ClusterRooms, LeaseOwnership, Leases, MediaLink, NatsBus, RemoteViewers,
};
use crate::config::ConfigError;
use crate::config::{Config, StoreKind};
use crate::control::ControlService;
use crate::edge::{self, EdgeState};
use crate::hub::{Hub, HubConfig};
use crate::media::{Media, MediaConfig};
use crate::metrics::Metrics;
use crate::pb;
use crate::registration::Registrar;
use crate::rooms::ownership::{Ownership, SoleNode};
use crate::rooms::Rooms;
use crate::store::postgres::{self, PgStore, PgTarget};
use crate::store::sqlite::SqliteStore;
use crate::store::Store;
use anyhow::Context;
use axum::serve::ListenerExt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_stream::StreamExt;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long a starting node waits for PostgreSQL or NATS to become reachable before it gives up.
const SERVICE_PATIENCE: Duration = Duration::from_secs(60);

/// The JetStream key-value bucket of room leases (one per cluster).
const LEASE_BUCKET: &str = "showfloor_rooms";

/// Connects to NATS, waiting up to [`SERVICE_PATIENCE`] while it is unreachable; a refusal
/// that waiting cannot fix (credentials, TLS, a malformed address) is a configuration error.
async fn connect_nats(urls: &str) -> anyhow::Result<async_nats::Client> {
    use async_nats::ConnectErrorKind as K;
    let shown: Vec<String> = urls.split(',').map(crate::config::redact).collect();
    let shown = shown.join(",");
    let deadline = tokio::time::Instant::now() + SERVICE_PATIENCE;
    let mut delay = Duration::from_millis(250);
    loop {
        match async_nats::connect(urls).await {
            Ok(client) => return Ok(client),
            Err(e)
                if matches!(
                    e.kind(),
                    K::ServerParse | K::Authentication | K::AuthorizationViolation | K::Tls
                ) =>
            {
                return Err(ConfigError(format!("NATS at {shown} refused us: {e}")).into())
            }
            Err(e) if tokio::time::Instant::now() + delay > deadline => {
                return Err(anyhow::Error::new(e).context(format!(
                    "NATS at {shown} was not reachable within {}s",
                    SERVICE_PATIENCE.as_secs()
                )))
            }
            Err(e) => {
                tracing::warn!(nats = %shown, error = %e, "NATS is not reachable yet");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Readiness: the store answers, and in a cluster NATS is connected.
struct Ready {
    store: Arc<dyn Store>,
    nats: Option<async_nats::Client>,
}

#[async_trait::async_trait]
impl edge::Dependencies for Ready {
    async fn check(&self) -> Result<(), String> {
        self.check_nats()?;
        self.check_store().await
    }
}

impl Ready {
    fn check_nats(&self) -> Result<(), String> {
        match &self.nats {
            Some(nats) => match nats.connection_state() {
                async_nats::connection::State::Connected => Ok(()),
                state => Err(format!("NATS is {state}")),
            },
            None => Ok(()),
        }
    }

    async fn check_store(&self) -> Result<(), String> {
        tokio::time::timeout(Duration::from_secs(2), self.store.ping())
            .await
            .map_err(|_| "the store did not answer within 2 s".to_string())?
            .map_err(|e| format!("the store: {}", crate::error_chain(&e)))
    }

    /// Keeps `showfloor_dependency_up` current until `stop`.
    async fn report(self: Arc<Self>, metrics: Arc<Metrics>, stop: CancellationToken) {
        loop {
            metrics.dependency("store", self.check_store().await.is_ok());
            if self.nats.is_some() {
                metrics.dependency("nats", self.check_nats().is_ok());
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            }
        }
    }
}

/// Whether this node runs alone or with others.
pub enum Membership {
    /// It owns every room; nothing is shared.
    Sole,
    /// A node of a cluster: it owns a room while it holds the room's lease, and forwards host
    /// commands for rooms owned elsewhere over `nats`.
    Cluster {
        nats: async_nats::Client,
        leases: Leases,
    },
}

/// A running server.
pub struct App {
    pub http_addr: SocketAddr,
    pub grpc_addr: SocketAddr,
    /// The key generated in `--dev` mode when none was configured.
    pub dev_key: Option<String>,
    pub hub: Arc<Hub>,
    /// The SFU; `media.udp_addr()` is the one UDP port of all media.
    pub media: Arc<Media>,
    pub metrics: Arc<Metrics>,
    /// The one drain signal: listeners stop accepting, rooms close their sessions.
    drain: CancellationToken,
    /// Every session and room task; shutdown waits for them within the grace period.
    tasks: TaskTracker,
    http_task: JoinHandle<()>,
    grpc_task: JoinHandle<()>,
    grace: Duration,
}

impl App {
    /// Starts the server on the store the config names.
    pub async fn start(config: Config) -> anyhow::Result<App> {
        let store: Arc<dyn Store> = match config.store {
            StoreKind::Sqlite => {
                Arc::new(SqliteStore::open(&config.data_dir).with_context(|| {
                    format!("cannot open the store in {}", config.data_dir.display())
                })?)
            }
            StoreKind::Postgres => {
                let url = config.postgres.as_ref().map(|u| u.expose()).unwrap_or("");
                // `Config::validate` parsed it already.
                let target = PgTarget::parse(url).map_err(|e| ConfigError(e.to_string()))?;
                match PgStore::open_with_retry(&target, SERVICE_PATIENCE).await {
                    Ok(store) => Arc::new(store),
                    Err(e) if postgres::is_misconfiguration(&e) => {
                        return Err(ConfigError(format!(
                            "PostgreSQL at {target:?} refused us: {}",
                            crate::error_chain(&e)
                        ))
                        .into())
                    }
                    Err(e) => {
                        return Err(anyhow::Error::new(e).context(format!(
                            "PostgreSQL at {target:?} was not reachable within {}s",
                            SERVICE_PATIENCE.as_secs()
                        )))
                    }
                }
            }
        };
        let membership = match config.nats.as_ref() {
            None => Membership::Sole,
            Some(url) => {
                let nats = connect_nats(url.expose()).await?;
                let ttl = Duration::from_secs(config.lease_ttl_secs);
                let js = async_nats::jetstream::new(nats.clone());
                let leases = Leases::open(js, LEASE_BUCKET, &config.node_id, ttl)
                    .await
                    .map_err(|e| match e {
                        crate::cluster::ClusterError::TtlMismatch { .. } => {
                            anyhow::Error::new(ConfigError(crate::error_chain(&e)))
                        }
                        e => anyhow::Error::new(e).context("cannot open the room leases on NATS"),
                    })?;
                Membership::Cluster { nats, leases }
            }
        };
        App::start_with_parts(config, store, membership).await
    }

    /// Starts the server on a given store (tests wrap one to make it slow or failing).
    pub async fn start_with_store(config: Config, store: Arc<dyn Store>) -> anyhow::Result<App> {
        App::start_with_parts(config, store, Membership::Sole).await
    }

    /// Starts the server on a given store, alone or as a node of a cluster.
    pub async fn start_with_parts(
        config: Config,
        store: Arc<dyn Store>,
        membership: Membership,
    ) -> anyhow::Result<App> {
        let directory = match &membership {
            Membership::Sole => None,
            Membership::Cluster { leases, .. } => Some(leases.clone()),
        };
        let ownership: Arc<dyn Ownership> = match &membership {
            Membership::Sole => Arc::new(SoleNode),
            Membership::Cluster { leases, .. } => {
                Arc::new(LeaseOwnership::new(leases.clone(), store.clone()))
            }
        };
        let mut keys = config.api_keys.clone();
        let dev_key = if keys.is_empty() && config.dev {
            let k = format!("dev-{}", auth::random_id(24));
            keys.push(crate::model::Secret::new(k.clone()));
            Some(k)
        } else {
            None
        };
        let metrics = Arc::new(Metrics::new());
        let drain = CancellationToken::new();
        let tasks = TaskTracker::new();
        // In a cluster the rooms' events go out on NATS, for the nodes serving their viewers.
        let nats_bus = match &membership {
            Membership::Sole => None,
            Membership::Cluster { nats, .. } => Some(Arc::new(NatsBus::new(nats.clone()))),
        };
        let bus: Arc<dyn crate::bus::Bus> = match &nats_bus {
            Some(b) => b.clone(),
            None => Arc::new(LocalBus::new()),
        };
        let hub = Hub::start(
            store.clone(),
            bus,
            ownership,
            metrics.clone(),
            HubConfig {
                outbound_queue: config.outbound_queue,
                heartbeat_ms: config.heartbeat_secs as i64 * 1000,
                node: crate::model::NodeTag::of(&config.node_id),
                node_id: config.node_id.clone(),
                ended_room_grace: Duration::from_secs(config.ended_room_grace_secs),
            },
            drain.clone(),
            tasks.clone(),
        );
        let ready = Arc::new(Ready {
            store: store.clone(),
            nats: match &membership {
                Membership::Sole => None,
                Membership::Cluster { nats, .. } => Some(nats.clone()),
            },
        });
        tokio::spawn(ready.clone().report(metrics.clone(), drain.clone()));
        // CRM webhooks: every node sends what the store's outbox holds.
        crate::webhooks::spawn(
            store.clone(),
            config.webhooks,
            metrics.clone(),
            drain.clone(),
        );
        let mut media_link = None;
        let rooms: Arc<dyn Rooms> = match membership {
            Membership::Sole => hub.clone(),
            Membership::Cluster { nats, leases } => {
                commands::serve(nats.clone(), &config.node_id, hub.clone(), drain.clone())
                    .await
                    .context("cannot answer host commands forwarded by other nodes")?;
                viewers::serve_owner(nats.clone(), &config.node_id, hub.clone(), drain.clone())
                    .await
                    .context("cannot answer viewers served by other nodes")?;
                let remote = RemoteViewers::start(
                    nats.clone(),
                    &config.node_id,
                    nats_bus.expect("a cluster has a NATS bus"),
                    leases,
                    metrics.clone(),
                    drain.clone(),
                )
                .await
                .context("cannot serve viewers of rooms other nodes own")?;
                let link =
                    MediaLink::new(nats.clone(), hub.clone(), &config.node_id, drain.clone());
                link.serve()
                    .await
                    .context("cannot answer media requests of other nodes")?;
                media_link = Some(link.clone());
                Arc::new(ClusterRooms::new(hub.clone(), remote, link, nats))
            }
        };

        let media = Media::start_in(
            rooms.clone(),
            &metrics,
            MediaConfig {
                udp_addr: config.media_udp_addr,
                public_ips: config.media_public_ips.clone(),
                max_subscribers: config.max_media_subscribers,
                publisher_idle: Duration::from_secs(config.publisher_idle_secs),
                room_idle: Duration::from_secs(config.media_room_idle_secs),
                relay_addr: media_link.as_ref().map(|_| config.relay_udp_addr),
                shed_lag: (config.media_shed_lag_ms > 0)
                    .then(|| Duration::from_millis(config.media_shed_lag_ms)),
            },
            drain.clone(),
            tasks.clone(),
        )
        .with_context(|| {
            format!(
                "cannot bind media UDP on {} (or the relay on {})",
                config.media_udp_addr, config.relay_udp_addr
            )
        })?;
        if let Some(link) = &media_link {
            let address = media
                .relay_addr()
                .and_then(|a| config.relay_address(a.port()));
            if address.is_none() {
                tracing::warn!(
                    "no --advertise or --relay-advertise: media is not relayed to or from this \
                     node, WHEP viewers of rooms run elsewhere are redirected there"
                );
            }
            link.media_started(&media, address);
        }

        // Read before anything listens: a bad certificate is a setting to fix (exit 64).
        let certs = match &config.tls {
            Some((cert, key)) => {
                Some(crate::tls::Certificates::load(cert, key).map_err(ConfigError)?)
            }
            None => None,
        };
        let http = listen(config.http_addr)
            .with_context(|| format!("cannot listen on {} (http)", config.http_addr))?;
        let grpc = listen(config.grpc_addr)
            .with_context(|| format!("cannot listen on {} (grpc)", config.grpc_addr))?;
        let http_addr = http.local_addr()?;
        // Other nodes send WHIP/WHEP requests for this node's rooms here.
        if let (Some(leases), Some(address)) =
            (&directory, config.advertised_address(http_addr.port()))
        {
            leases.advertise(address, drain.clone());
        }
        let grpc_addr = grpc.local_addr()?;
        // The nodes a viewer page may reconnect to: every address advertised in the cluster.
        let page_nodes = match &directory {
            Some(leases) => leases.advertised_addresses(drain.clone()),
            None => tokio::sync::watch::channel(Vec::new()).1,
        };

        let per_ip = crate::peer::PerIp::new(config.max_connections_per_ip, config.limit_loopback);
        let edge_state = EdgeState {
            per_ip: per_ip.clone(),
            rooms: rooms.clone(),
            metrics: metrics.clone(),
            connections: Arc::new(Semaphore::new(config.max_connections)),
            max_message_bytes: config.max_message_bytes,
            outbound_queue: config.outbound_queue,
            write_delay: Duration::from_millis(config.write_delay_ms),
            draining: drain.clone(),
            sessions: tasks.clone(),
            dependencies: ready.clone(),
        };
        // Registrations go through the store, so any node takes them; the room is reached
        // through the seam.
        let registrar = Arc::new(Registrar::new(
            rooms.clone(),
            store.clone(),
            config.registration_limits,
        ));
        let reports = Arc::new(crate::reports::Reports::new(
            store.clone(),
            config.heartbeat_secs as i64 * 1000,
        ));
        crate::webhooks::leads::spawn(
            rooms.clone(),
            reports.clone(),
            store.clone(),
            config.node_id.clone(),
            config.webhooks.lead_check,
            drain.clone(),
        );
        let control = pb::control_server::ControlServer::new(ControlService::new(
            rooms.clone(),
            registrar.clone(),
            reports.clone(),
            Arc::new(crate::webhooks::host::Hooks::new(
                store.clone(),
                config.webhooks,
            )),
            metrics.clone(),
            HostKeys::new(&keys),
        ));
        // The browser console speaks grpc-web to the same service, on the pages' own origin.
        let grpc_web = tower::Layer::layer(&tonic_web::GrpcWebLayer::new(), control.clone());
        let router = edge::router(edge_state)
            .merge(crate::media::http::router(media.clone()))
            .merge(crate::web::router(grpc_web, page_nodes))
            .merge(crate::api::router(registrar))
            .merge(crate::report_download::router(
                reports,
                HostKeys::new(&keys),
            ))
            .layer(axum::middleware::from_fn_with_state(
                per_ip,
                crate::peer::limit_requests,
            ));
        let http_stop = drain.clone();
        // The registration endpoint rate-limits by the client's address.
        let service = router.into_make_service_with_connect_info::<SocketAddr>();
        let http_task = match &certs {
            None => tokio::spawn(async move {
                // Events are small and latency-bound: never let Nagle hold a frame back.
                let http = http.tap_io(|tcp| nodelay(tcp));
                let r = axum::serve(http, service)
                    .with_graceful_shutdown(async move { http_stop.cancelled().await })
                    .await;
                if let Err(e) = r {
                    tracing::error!(error = %e, "http server failed");
                }
            }),
            Some(certs) => {
                let http = crate::tls::TlsListener::new(
                    http,
                    certs.acceptor(&[b"http/1.1"]),
                    nodelay,
                    drain.clone(),
                )?;
                tokio::spawn(async move {
                    let r = axum::serve(http.tap_io(|_| {}), service)
                        .with_graceful_shutdown(async move { http_stop.cancelled().await })
                        .await;
                    if let Err(e) = r {
                        tracing::error!(error = %e, "https server failed");
                    }
                })
            }
        };
        if let Some(certs) = &certs {
            #[cfg(unix)]
            crate::tls::reload_on_sighup(certs.clone(), drain.clone())
                .context("cannot listen for SIGHUP (TLS reloads)")?;
        }

        // Reflection v1 and v1alpha: Python's grpcio-reflection and older grpcurl/grpcui ask
        // v1alpha only, and would find nothing on a v1-only server.
        let reflection = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
            .build_v1()
            .context("gRPC reflection")?;
        let reflection_v1alpha = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
            .build_v1alpha()
            .context("gRPC reflection (v1alpha)")?;
        let grpc_stop = drain.clone();
        let grpc_router = tonic::transport::Server::builder()
            .add_service(control)
            .add_service(reflection)
            .add_service(reflection_v1alpha);
        let grpc_task = match &certs {
            None => tokio::spawn(async move {
                let incoming = tokio_stream::wrappers::TcpListenerStream::new(grpc)
                    .map(|s| s.inspect(nodelay));
                let r = grpc_router
                    .serve_with_incoming_shutdown(
                        incoming,
                        async move { grpc_stop.cancelled().await },
                    )
                    .await;
                if let Err(e) = r {
                    tracing::error!(error = %e, "grpc server failed");
                }
            }),
            Some(certs) => {
                let tls = crate::tls::TlsListener::new(
                    grpc,
                    certs.acceptor(&[b"h2"]),
                    nodelay,
                    drain.clone(),
                )?;
                let incoming = futures_util::stream::unfold(tls, |mut tls| async move {
                    let (io, _) = tls.next().await?;
                    Some((Ok::<_, std::io::Error>(io), tls))
                });
                tokio::spawn(async move {
                    let r = grpc_router
                        .serve_with_incoming_shutdown(incoming, async move {
                            grpc_stop.cancelled().await
                        })
                        .await;
                    if let Err(e) = r {
                        tracing::error!(error = %e, "grpc (TLS) server failed");
                    }
                })
            }
        };
        tracing::info!(%http_addr, %grpc_addr, media_udp = %media.udp_addr(), data_dir = %config.data_dir.display(), "showfloor serving");
        Ok(App {
            http_addr,
            grpc_addr,
            dev_key,
            hub,
            media,
            metrics,
            drain,
            tasks,
            http_task,
            grpc_task,
            grace: Duration::from_secs(config.shutdown_grace_secs),
        })
    }

    /// The drain, one signal for everything: listeners stop accepting and /readyz says
    /// draining; every room closes its sessions with "going away" (after what is queued) and
    /// stops once its acknowledged writes are durable; media sessions close. Then it waits,
    /// within the grace period, for every session and room task, and flushes the store.
    pub async fn shutdown(self) {
        self.drain.cancel();
        self.tasks.close();
        self.media.shutdown().await;
        let wait = async {
            self.tasks.wait().await;
            let _ = self.http_task.await;
            let _ = self.grpc_task.await;
        };
        if tokio::time::timeout(self.grace, wait).await.is_err() {
            tracing::warn!(
                open = self.tasks.len(),
                "some sessions or rooms did not finish within the grace period"
            );
        }
        self.hub.drained().await;
    }
}

fn nodelay(tcp: &tokio::net::TcpStream) {
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(error = %e, "TCP_NODELAY");
    }
}

/// Pending connections the kernel may hold for a listener (capped by `net.core.somaxconn`).
/// A reconnect storm sends thousands of SYNs at once; with tokio's default of 1,024 the
/// overflow is dropped and those clients retry only after the 1 s SYN timeout.
const LISTEN_BACKLOG: u32 = 8192;

fn listen(addr: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}
