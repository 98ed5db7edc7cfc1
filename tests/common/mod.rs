//! Shared test helpers: the real server in-process on port 0, a gRPC client with the host key,
//! and WebSocket viewers.
#![allow(dead_code)]

pub mod cluster;
pub mod nats;
pub mod price_show;
pub mod process;
pub mod receiver;
pub mod registration;
pub mod rtc_client;
pub mod udp_relay;

#[allow(unused_imports)]
pub use process::Served;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use showfloor::app::App;
use showfloor::config::Config;
use showfloor::pb;
use showfloor::pb::control_client::ControlClient;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tonic::transport::Channel;

pub const KEY: &str = "test-host-key-0123456789";

/// How long a test waits for something that should happen promptly.
pub const WAIT: Duration = Duration::from_secs(10);

pub struct Server {
    pub app: Option<App>,
    pub dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

impl Server {
    pub async fn start() -> Server {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let mut s = Server::start_in(&dir, |_| {}).await;
        s._tmp = Some(tmp);
        s
    }

    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> Server {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let mut s = Server::start_in(&dir, tweak).await;
        s._tmp = Some(tmp);
        s
    }

    pub async fn start_in(dir: &Path, tweak: impl FnOnce(&mut Config)) -> Server {
        let mut config = Config::for_tests(dir.to_path_buf(), KEY);
        tweak(&mut config);
        let app = App::start(config).await.expect("server starts");
        Server {
            app: Some(app),
            dir: dir.to_path_buf(),
            _tmp: None,
        }
    }

    /// A server on a fresh PostgreSQL database of the test server (instead of SQLite).
    pub async fn start_on_postgres() -> Server {
        let url = showfloor::store::postgres::scratch::fresh_database_url();
        Server::start_with(|c| {
            c.store = showfloor::config::StoreKind::Postgres;
            c.postgres = Some(url.into());
        })
        .await
    }

    /// A server already started by the test (e.g. on a store of its own), in `dir`.
    pub fn of(app: App, dir: &Path) -> Server {
        Server {
            app: Some(app),
            dir: dir.to_path_buf(),
            _tmp: None,
        }
    }

    pub fn app(&self) -> &App {
        self.app.as_ref().unwrap()
    }

    pub fn http(&self) -> String {
        format!("http://{}", self.app().http_addr)
    }

    pub async fn control(&self) -> Control {
        let ch = Channel::from_shared(format!("http://{}", self.app().grpc_addr))
            .unwrap()
            .connect()
            .await
            .unwrap();
        Control {
            client: ControlClient::new(ch),
        }
    }

    pub async fn stop(&mut self) {
        if let Some(app) = self.app.take() {
            app.shutdown().await;
        }
    }

    pub async fn viewer(&self, room: &str, token: &str) -> Viewer {
        self.viewer_with(room, token, "").await
    }

    pub async fn viewer_with(&self, room: &str, token: &str, extra_query: &str) -> Viewer {
        let url = format!(
            "ws://{}/ws/{room}?token={token}{extra_query}",
            self.app().http_addr
        );
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("ws connects");
        Viewer {
            ws,
            frames: Vec::new(),
        }
    }
}

/// A control-plane client that adds the host key to every call.
#[derive(Clone)]
pub struct Control {
    pub client: ControlClient<Channel>,
}

pub fn authed<T>(msg: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.metadata_mut()
        .insert("authorization", format!("Bearer {KEY}").parse().unwrap());
    r
}

impl Control {
    pub async fn create_room(&mut self, title: &str) -> pb::CreateRoomResponse {
        self.client
            .create_room(authed(pb::CreateRoomRequest {
                title: title.into(),
                tiers: vec!["gold".into(), "silver".into()],
                banned_words: vec!["darn".into()],
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner()
    }

    pub async fn token(&mut self, room: &str, viewer: &str) -> String {
        self.client
            .issue_viewer_token(authed(pb::IssueViewerTokenRequest {
                room_id: room.into(),
                viewer_id: viewer.into(),
                display_name: format!("name-{viewer}"),
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner()
            .token
    }

    /// A presenter token for `brand` of `room` (WHIP).
    pub async fn presenter_token(&mut self, room: &str, brand: &str) -> String {
        self.client
            .issue_presenter_token(authed(pb::IssuePresenterTokenRequest {
                room_id: room.into(),
                brand_id: brand.into(),
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner()
            .token
    }

    pub async fn add_brand(&mut self, room: &str, name: &str) -> pb::Brand {
        self.client
            .add_brand(authed(pb::AddBrandRequest {
                room_id: room.into(),
                name: name.into(),
                logo_url: format!("https://img.example/{name}.png"),
                position: None,
            }))
            .await
            .unwrap()
            .into_inner()
    }

    pub async fn product(
        &mut self,
        room: &str,
        brand: &str,
        name: &str,
        gold: i64,
        silver: i64,
    ) -> pb::Product {
        self.client
            .upsert_product(authed(pb::UpsertProductRequest {
                room_id: room.into(),
                brand_id: brand.into(),
                name: name.into(),
                description: format!("{name} description"),
                image_urls: vec![format!("https://img.example/{name}.jpg")],
                link: format!("https://shop.example/secret/{name}"),
                min_order_quantity: 10,
                prices: vec![
                    pb::TierPrice {
                        tier: "gold".into(),
                        price_cents: gold,
                    },
                    pb::TierPrice {
                        tier: "silver".into(),
                        price_cents: silver,
                    },
                ],
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner()
    }

    pub async fn switch(&mut self, room: &str, brand: &str) {
        self.client
            .switch_brand(authed(pb::BrandRef {
                room_id: room.into(),
                brand_id: brand.into(),
            }))
            .await
            .unwrap();
    }

    pub async fn verify(&mut self, room: &str, viewer: &str, tier: &str) {
        self.client
            .verify_dealer(authed(pb::VerifyDealerRequest {
                room_id: room.into(),
                viewer_id: viewer.into(),
                tier: tier.into(),
                company: "Acme Trading".into(),
            }))
            .await
            .unwrap();
    }

    pub async fn get_room(&mut self, room: &str) -> pb::Room {
        self.client
            .get_room(authed(pb::GetRoomRequest {
                room_id: room.into(),
            }))
            .await
            .unwrap()
            .into_inner()
    }

    pub async fn announce(&mut self, room: &str, text: &str) {
        self.client
            .announce(authed(pb::AnnounceRequest {
                room_id: room.into(),
                text: text.into(),
            }))
            .await
            .unwrap();
    }
}

/// A room with two brands (A on air) and two products each, gold and silver prices.
#[derive(Clone)]
pub struct Show {
    pub room: String,
    pub key: String,
    pub brand_a: String,
    pub brand_b: String,
    pub products: Vec<pb::Product>,
}

pub async fn setup_show(c: &mut Control) -> Show {
    let r = c.create_room("Spring order meeting").await;
    let room = r.room.unwrap().id;
    let a = c.add_brand(&room, "Alpha").await;
    let b = c.add_brand(&room, "Bravo").await;
    let products = vec![
        c.product(&room, &a.id, "alpha-jacket", 11_100, 12_200)
            .await,
        c.product(&room, &a.id, "alpha-boots", 13_300, 14_400).await,
        c.product(&room, &b.id, "bravo-tent", 15_500, 16_600).await,
        c.product(&room, &b.id, "bravo-stove", 17_700, 18_800).await,
    ];
    c.switch(&room, &a.id).await;
    c.client
        .open_room(authed(pb::RoomRef {
            room_id: room.clone(),
        }))
        .await
        .unwrap();
    Show {
        room,
        key: r.token_key,
        brand_a: a.id,
        brand_b: b.id,
        products,
    }
}

pub struct Viewer {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// Every text frame received, raw.
    pub frames: Vec<String>,
}

#[derive(Debug)]
pub enum Next {
    Frame(Value),
    Closed(Option<(u16, String)>),
}

impl Viewer {
    pub async fn send(&mut self, v: Value) {
        self.ws.send(Message::text(v.to_string())).await.unwrap();
    }

    pub async fn send_raw(&mut self, s: &str) {
        self.ws.send(Message::text(s.to_string())).await.unwrap();
    }

    /// The next text frame or the close, within WAIT.
    pub async fn next(&mut self) -> Next {
        loop {
            let m = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("a frame within the wait");
            match m {
                Some(Ok(Message::Text(t))) => {
                    self.frames.push(t.to_string());
                    return Next::Frame(serde_json::from_str(t.as_str()).expect("frames are JSON"));
                }
                Some(Ok(Message::Close(c))) => {
                    return Next::Closed(c.map(|c| (u16::from(c.code), c.reason.to_string())))
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Next::Closed(None),
            }
        }
    }

    /// The next frame; panics on close.
    pub async fn frame(&mut self) -> Value {
        match self.next().await {
            Next::Frame(v) => v,
            Next::Closed(c) => panic!("closed unexpectedly: {c:?}"),
        }
    }

    /// Skips frames until one of type `t`.
    pub async fn expect(&mut self, t: &str) -> Value {
        loop {
            let f = self.frame().await;
            if f["type"] == t {
                return f;
            }
        }
    }

    /// Reads until the server closes; returns code and reason.
    pub async fn closed(&mut self) -> (u16, String) {
        loop {
            if let Next::Closed(c) = self.next().await {
                return c.unwrap_or((u16::from(CloseCode::Abnormal), String::new()));
            }
        }
    }

    pub fn saw_text(&self, needle: &str) -> bool {
        self.frames.iter().any(|f| f.contains(needle))
    }
}

/// A frame a public viewer may get: no price field and no product link.
pub fn assert_no_price_or_link(frame: &str) {
    assert!(
        !frame.contains("price"),
        "public frame has a price field: {frame}"
    );
    assert!(
        !frame.contains("shop.example"),
        "public frame has a link: {frame}"
    );
}

/// A dealer token minted by "the host's own backend" with the room key (documented claims).
pub fn dealer_token(room: &str, key: &str, viewer: &str, tier: &str) -> String {
    let now = showfloor::model::now_ms() / 1000;
    showfloor::auth::issue_viewer_token(
        key,
        &showfloor::auth::ViewerClaims {
            room: room.into(),
            sub: viewer.into(),
            name: format!("name-{viewer}"),
            role: showfloor::auth::Role::Dealer,
            tier: Some(tier.into()),
            inv: None,
            iat: now,
            exp: now + 3600,
            jti: format!("jti-{viewer}"),
        },
    )
    .unwrap()
}

/// Connects a WebSocket viewer to any server address.
pub async fn connect(http_addr: &str, room: &str, token: &str) -> Viewer {
    try_connect(http_addr, room, token)
        .await
        .expect("ws connects")
}

/// Connects a WebSocket viewer, or says why it could not (a node that is down).
pub async fn try_connect(
    http_addr: &str,
    room: &str,
    token: &str,
) -> Result<Viewer, tokio_tungstenite::tungstenite::Error> {
    let url = format!("ws://{http_addr}/ws/{room}?token={token}");
    let (ws, _) = tokio_tungstenite::connect_async(url).await?;
    Ok(Viewer {
        ws,
        frames: Vec::new(),
    })
}

/// Lets one test process hold thousands of sockets.
pub fn raise_fd_limit() {
    // SAFETY: plain libc calls on a local struct.
    unsafe {
        let mut l = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) == 0 && l.rlim_cur < l.rlim_max {
            l.rlim_cur = l.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &l);
        }
    }
}

impl Control {
    /// A flash sale of `product` starting now: gold and silver at the given prices.
    pub async fn flash_sale(
        &mut self,
        room: &str,
        product: &str,
        stock: u32,
        limit: u32,
        seconds: u32,
    ) -> pb::FlashSale {
        self.client
            .create_flash_sale(authed(pb::CreateFlashSaleRequest {
                room_id: room.into(),
                product_id: product.into(),
                stock,
                per_dealer_limit: limit,
                prices: vec![
                    pb::TierPrice {
                        tier: "gold".into(),
                        price_cents: 5_000,
                    },
                    pb::TierPrice {
                        tier: "silver".into(),
                        price_cents: 6_000,
                    },
                ],
                start_ms: 0,
                duration_seconds: seconds,
                tiers: vec![],
            }))
            .await
            .unwrap()
            .into_inner()
    }
}

/// Whether a server on a loopback port answers `/readyz` with 200 (false while it is down).
pub async fn readyz(port: u16) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return false;
    };
    if s.write_all(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .is_err()
    {
        return false;
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out).await;
    out.starts_with("HTTP/1.1 200")
}

impl Control {
    /// A control client of a server process's gRPC port on loopback.
    pub async fn at(grpc: u16) -> Control {
        let ch = Channel::from_shared(format!("http://127.0.0.1:{grpc}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        Control {
            client: pb::control_client::ControlClient::new(ch),
        }
    }
}

/// The `showfloor` binary of this build.
pub fn bin() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_showfloor"))
}

/// What `showfloor ctl` did: its exit code and output.
pub struct CtlRun {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// `showfloor ctl --server … --key KEY ARGS…` against `server`, off the runtime's threads.
pub async fn ctl_run(server: &Server, args: &[&str]) -> CtlRun {
    let mut cmd = bin();
    cmd.args(["ctl", "--server"])
        .arg(format!("http://{}", server.app().grpc_addr))
        .args(["--key", KEY])
        .args(args);
    tokio::task::spawn_blocking(move || {
        let out = cmd.output().expect("the binary runs");
        CtlRun {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    })
    .await
    .unwrap()
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
