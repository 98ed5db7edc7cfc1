//! Nodes of a cluster in this process: each an `App` on one PostgreSQL database and one
//! nats-server, with a lease TTL of 2 s.

use super::nats::NatsServer;
use super::{Next, Server, Viewer, KEY};
use showfloor::app::{App, Membership};
use showfloor::cluster::Leases;
use showfloor::config::Config;
use showfloor::store::postgres::{PgStore, PgTarget};
use showfloor::store::Store;
use std::sync::Arc;
use std::time::Duration;

pub struct Node {
    pub server: Server,
    pub leases: Leases,
    _data: tempfile::TempDir,
}

pub async fn node(nats: &NatsServer, db: &PgTarget, id: &str) -> Node {
    node_with(nats, db, id, |_| {}).await
}

/// A node whose configuration `tweak` changes last.
pub async fn node_with(
    nats: &NatsServer,
    db: &PgTarget,
    id: &str,
    tweak: impl FnOnce(&mut Config),
) -> Node {
    let store: Arc<dyn Store> = Arc::new(PgStore::open(db).await.unwrap());
    let leases = Leases::open(nats.jetstream().await, "rooms", id, Duration::from_secs(2))
        .await
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let mut config = Config::for_tests(tmp.path().to_path_buf(), KEY);
    config.node_id = id.into();
    // Where WHIP/WHEP requests for this node's rooms are redirected (its own HTTP port), and
    // the host other nodes send it media relay datagrams at.
    config.advertise = Some("127.0.0.1".into());
    tweak(&mut config);
    let membership = Membership::Cluster {
        nats: nats.jetstream().await.client(),
        leases: leases.clone(),
    };
    let app = App::start_with_parts(config, store, membership)
        .await
        .unwrap();
    Node {
        server: Server::of(app, tmp.path()),
        leases,
        _data: tmp,
    }
}

/// Nodes "node-a" and "node-b" on a nats-server and a database of their own, with a show
/// created on A (so A owns it). Keep `nats` bound for the whole test (a `..` pattern drops
/// it, and with it the nats-server).
pub struct TwoNodes {
    pub a: Node,
    pub b: Node,
    pub db: PgTarget,
    pub show: super::Show,
    pub nats: NatsServer,
}

pub async fn two_nodes_with_a_show() -> TwoNodes {
    let nats = NatsServer::start().await;
    let db = showfloor::store::postgres::scratch::fresh_database();
    let a = node(&nats, &db, "node-a").await;
    let b = node(&nats, &db, "node-b").await;
    let show = super::setup_show(&mut a.server.control().await).await;
    TwoNodes {
        a,
        b,
        db,
        show,
        nats,
    }
}

impl Node {
    /// Connects a viewer and waits for its welcome (returned), or returns the close it got
    /// instead.
    pub async fn join(
        &self,
        room: &str,
        token: &str,
    ) -> Result<(Viewer, serde_json::Value), (u16, String)> {
        self.join_with(room, token, "").await
    }

    pub async fn join_with(
        &self,
        room: &str,
        token: &str,
        extra_query: &str,
    ) -> Result<(Viewer, serde_json::Value), (u16, String)> {
        let mut v = self.server.viewer_with(room, token, extra_query).await;
        match v.next().await {
            Next::Frame(f) if f["type"] == "welcome" => Ok((v, f)),
            Next::Frame(f) => panic!("unexpected first frame {f}"),
            Next::Closed(c) => Err(c.expect("a close frame")),
        }
    }

    /// This node's `/metrics` text.
    pub async fn metrics(&self) -> String {
        super::rtc_client::http(self.server.app().http_addr, "GET", "/metrics", &[], "")
            .await
            .body
    }
}
