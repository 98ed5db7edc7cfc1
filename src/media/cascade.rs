//! The media cascade's data plane: a room's feeds carried from the node they are published
//! on (their origin) to the other nodes that have WHEP viewers of the room (edges), as plain
//! RTP fields over UDP on a socket of its own (see docs/cluster.md, "Media across nodes").
//!
//! The control plane is not here: the cluster layer asks an origin for a room's feeds on an
//! edge's behalf (`Media::relay_offer` there, `Media::follow_relay` here) with a subscription
//! id the edge chose. The edge then sends `HELLO` datagrams from its relay socket; the origin
//! sends each packet of the room's feeds to the address those come from, until the
//! subscription is not renewed. Every datagram names the subscription, so a packet is only
//! taken for the feed the edge was offered under that id.
//!
//! On the edge a relayed feed is an ordinary `Feed` of the room: the program, the switch and
//! the per-viewer rewrite are the same as for a local publisher, NACKs are answered by each
//! viewer's own PeerConnection from what it sent, and a viewer's key-frame request goes back
//! to the origin as a `PLI` datagram, where the feed's own throttle merges them.
//!
//! Datagrams (integers big-endian):
//! - `RTP`   `0xC1 | sub u64 | feed u64 | seq u16 | ts u32 | flags u8 (bit 0: marker) | payload`
//! - `HELLO` `0xC2 | sub u64`
//! - `PLI`   `0xC3 | sub u64 | feed u64`

use super::keyframe::VideoCodec;
use super::room::{Feed, RoomMedia};
use super::sfu::{MediaKind, SourceCodec};
use super::Media;
use bytes::Bytes;
use dashmap::DashMap;
use parking_lot::Mutex;
use rtc::rtp;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

const TAG_RTP: u8 = 0xC1;
const TAG_HELLO: u8 = 0xC2;
const TAG_PLI: u8 = 0xC3;
/// Bytes before an `RTP` datagram's payload.
const RTP_HEADER: usize = 1 + 8 + 8 + 2 + 4 + 1;
/// An origin keeps relaying to a subscription this long after its last renewal.
pub const SUBSCRIPTION_TTL: Duration = Duration::from_secs(3);

/// A feed as an origin offers it: its id there, its brand and its codec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayedFeed {
    pub id: u64,
    pub brand: String,
    pub codec: RelayedCodec,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RelayedCodec {
    Opus,
    Vp8,
    H264,
}

impl RelayedCodec {
    fn of(c: SourceCodec) -> RelayedCodec {
        match c.video {
            None => RelayedCodec::Opus,
            Some(VideoCodec::Vp8) => RelayedCodec::Vp8,
            Some(VideoCodec::H264) => RelayedCodec::H264,
        }
    }

    fn source_codec(self) -> SourceCodec {
        match self {
            RelayedCodec::Opus => SourceCodec {
                kind: MediaKind::Audio,
                video: None,
            },
            RelayedCodec::Vp8 => SourceCodec {
                kind: MediaKind::Video,
                video: Some(VideoCodec::Vp8),
            },
            RelayedCodec::H264 => SourceCodec {
                kind: MediaKind::Video,
                video: Some(VideoCodec::H264),
            },
        }
    }
}

/// An edge's subscription at the origin.
struct Subscription {
    room: String,
    /// Where its `HELLO`s come from: where the room's packets go.
    addr: Option<SocketAddr>,
    until: Instant,
}

/// A relayed feed on the edge.
struct Inbound {
    room: Weak<RoomMedia>,
    feed: Arc<Feed>,
}

/// Where an origin sends one room's packets: (subscription, edge address).
pub(super) type Targets = Vec<(u64, SocketAddr)>;

/// The node's relay socket and both sides' tables.
pub struct Relay {
    socket: Arc<UdpSocket>,
    /// Origin side: subscriptions by id.
    subs: Mutex<HashMap<u64, Subscription>>,
    /// Edge side: relayed feeds by (subscription, feed id at the origin).
    inbound: DashMap<(u64, u64), Inbound>,
    /// `showfloor_media_relay_sent_total` / `…_received_total`.
    sent: prometheus_client::metrics::counter::Counter,
    received: prometheus_client::metrics::counter::Counter,
}

impl Relay {
    pub(super) fn bind(addr: SocketAddr, stats: &super::MediaStats) -> std::io::Result<Arc<Relay>> {
        let std = std::net::UdpSocket::bind(addr)?;
        std.set_nonblocking(true)?;
        let socket = UdpSocket::from_std(std)?;
        Ok(Arc::new(Relay {
            socket: Arc::new(socket),
            subs: Mutex::new(HashMap::new()),
            inbound: DashMap::new(),
            sent: stats.relay_sent.clone(),
            received: stats.relay_received.clone(),
        }))
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Sends a packet of a local feed to every edge in `targets`; never waits (a full socket
    /// buffer drops, as UDP does).
    pub(super) fn send(&self, targets: &Targets, feed: u64, p: &rtp::Packet) {
        let mut buf = Vec::with_capacity(RTP_HEADER + p.payload.len());
        buf.push(TAG_RTP);
        buf.extend_from_slice(&0u64.to_be_bytes());
        buf.extend_from_slice(&feed.to_be_bytes());
        buf.extend_from_slice(&p.header.sequence_number.to_be_bytes());
        buf.extend_from_slice(&p.header.timestamp.to_be_bytes());
        buf.push(u8::from(p.header.marker));
        buf.extend_from_slice(&p.payload);
        for (sub, addr) in targets {
            buf[1..9].copy_from_slice(&sub.to_be_bytes());
            if self.socket.try_send_to(&buf, *addr).is_ok() {
                self.sent.inc();
            }
        }
    }

    fn hello(&self, sub: u64, to: SocketAddr) {
        let mut b = [0u8; 9];
        b[0] = TAG_HELLO;
        b[1..].copy_from_slice(&sub.to_be_bytes());
        let _ = self.socket.try_send_to(&b, to);
    }

    fn pli(&self, sub: u64, feed: u64, to: SocketAddr) {
        let mut b = [0u8; 17];
        b[0] = TAG_PLI;
        b[1..9].copy_from_slice(&sub.to_be_bytes());
        b[9..].copy_from_slice(&feed.to_be_bytes());
        let _ = self.socket.try_send_to(&b, to);
    }

    /// The edges a room's packets go to now.
    fn targets_of(&self, room: &str) -> Targets {
        self.subs
            .lock()
            .iter()
            .filter(|(_, s)| s.room == room)
            .filter_map(|(id, s)| s.addr.map(|a| (*id, a)))
            .collect()
    }
}

fn be_u64(b: &[u8]) -> u64 {
    u64::from_be_bytes(b[..8].try_into().expect("8 bytes"))
}

/// Reads the relay socket: packets for this node's relayed feeds, and the `HELLO`s and
/// `PLI`s of edges this node relays to.
pub(super) async fn recv_loop(media: Weak<Media>, relay: Arc<Relay>) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let (n, from) = match relay.socket.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(e) => {
                // ICMP errors from an edge that went away surface here on some systems.
                tracing::debug!(error = %e, "relay socket");
                tokio::time::sleep(Duration::from_millis(1)).await;
                continue;
            }
        };
        let d = &buf[..n];
        match d.first() {
            Some(&TAG_RTP) if n >= RTP_HEADER => {
                let key = (be_u64(&d[1..]), be_u64(&d[9..]));
                let Some((room, feed)) = relay
                    .inbound
                    .get(&key)
                    .and_then(|i| Some((i.room.upgrade()?, i.feed.clone())))
                else {
                    continue;
                };
                relay.received.inc();
                let p = rtp::Packet {
                    header: rtp::Header {
                        version: 2,
                        sequence_number: u16::from_be_bytes([d[17], d[18]]),
                        timestamp: u32::from_be_bytes([d[19], d[20], d[21], d[22]]),
                        marker: d[23] & 1 == 1,
                        ..Default::default()
                    },
                    payload: Bytes::copy_from_slice(&d[RTP_HEADER..]),
                };
                room.on_packet(&feed, &p);
            }
            Some(&TAG_HELLO) if n >= 9 => {
                let sub = be_u64(&d[1..]);
                let room = {
                    let mut subs = relay.subs.lock();
                    match subs.get_mut(&sub) {
                        Some(s) if s.addr != Some(from) => {
                            s.addr = Some(from);
                            Some(s.room.clone())
                        }
                        _ => None,
                    }
                };
                if let (Some(room), Some(m)) = (room, media.upgrade()) {
                    m.retarget_relay(&room);
                }
            }
            Some(&TAG_PLI) if n >= 17 => {
                let (sub, feed) = (be_u64(&d[1..]), be_u64(&d[9..]));
                let room = relay.subs.lock().get(&sub).map(|s| s.room.clone());
                if let (Some(room), Some(m)) = (room, media.upgrade()) {
                    if let Some(r) = m.room_media(&room) {
                        r.relayed_keyframe_request(feed);
                    }
                }
            }
            _ => {}
        }
    }
}

impl Media {
    fn relay(&self) -> Option<&Arc<Relay>> {
        self.relay.as_ref()
    }

    /// Whether this node can carry media to and from other nodes (it has a relay socket).
    pub fn relays(&self) -> bool {
        self.relay.is_some()
    }

    /// Packets this node sent to other nodes' relay sockets (as origin).
    pub fn relayed_packets(&self) -> u64 {
        self.relay().map_or(0, |r| r.sent.get())
    }

    /// The brands this node publishes in `room` itself (its presenters' feeds, not relayed).
    pub fn local_brands(&self, room: &str) -> std::collections::BTreeSet<String> {
        self.room_media(room)
            .map(|r| r.local_feeds().iter().map(|f| f.brand.clone()).collect())
            .unwrap_or_default()
    }

    /// The relay socket's address (`None` without one).
    pub fn relay_addr(&self) -> Option<SocketAddr> {
        self.relay()?.local_addr().ok()
    }

    /// Origin side: an edge subscribes (or renews subscription `sub`) to `room`'s feeds on
    /// this node; the answer lists them. Packets flow once the edge's `HELLO` arrives.
    pub async fn relay_offer(
        self: &Arc<Self>,
        room: &str,
        sub: u64,
    ) -> Result<Vec<RelayedFeed>, super::MediaError> {
        let Some(relay) = self.relay() else {
            return Err(super::MediaError::Unavailable(
                "this node has no relay socket".into(),
            ));
        };
        let r = self.room_for(room).await?;
        relay
            .subs
            .lock()
            .entry(sub)
            .and_modify(|s| s.until = Instant::now() + SUBSCRIPTION_TTL)
            .or_insert_with(|| Subscription {
                room: room.to_string(),
                addr: None,
                until: Instant::now() + SUBSCRIPTION_TTL,
            });
        Ok(r.local_feeds()
            .into_iter()
            .map(|f| RelayedFeed {
                id: f.source,
                brand: f.brand.clone(),
                codec: RelayedCodec::of(f.codec),
            })
            .collect())
    }

    /// Points a room's relayed packets at its subscriptions' current addresses.
    fn retarget_relay(&self, room: &str) {
        if let (Some(relay), Some(r)) = (self.relay(), self.room_media(room)) {
            r.set_relay(relay.clone(), relay.targets_of(room));
        }
    }

    /// Origin side: drops subscriptions not renewed in time (janitor).
    pub(super) fn expire_relay(&self) {
        let Some(relay) = self.relay() else { return };
        let now = Instant::now();
        let gone: Vec<String> = {
            let mut subs = relay.subs.lock();
            let gone = subs
                .values()
                .filter(|s| s.until <= now)
                .map(|s| s.room.clone())
                .collect();
            subs.retain(|_, s| s.until > now);
            gone
        };
        for room in gone {
            self.retarget_relay(&room);
        }
    }

    /// Edge side: `room`'s feeds at the origin `origin` (relay address), offered under
    /// subscription `sub`, become the room's feeds here (new ones added, gone ones removed);
    /// then a `HELLO` renews the flow.
    pub fn follow_relay(
        self: &Arc<Self>,
        room: &str,
        sub: u64,
        origin: SocketAddr,
        feeds: Vec<RelayedFeed>,
    ) -> Result<(), super::MediaError> {
        let Some(relay) = self.relay().cloned() else {
            return Ok(());
        };
        // Not created here: the room's media is made (and followed) by its first session.
        let Some(r) = self.room_media(room) else {
            return Err(super::MediaError::NotFound(format!(
                "no media of room {room} here yet"
            )));
        };
        let session = relay_session(sub);
        // Brands that lost a feed lose all their relayed feeds, then get the rest again.
        let stale: Vec<String> = relay
            .inbound
            .iter()
            .filter(|i| i.key().0 == sub)
            .filter(|i| {
                !feeds
                    .iter()
                    .any(|f| f.id == i.key().1 && f.brand == i.feed.brand)
            })
            .map(|i| i.feed.brand.clone())
            .collect();
        for brand in &stale {
            relay
                .inbound
                .retain(|k, i| !(k.0 == sub && &i.feed.brand == brand));
            r.remove_feeds(brand, &session);
        }
        for f in feeds {
            if let Some(known) = relay.inbound.get(&(sub, f.id)).map(|i| i.feed.clone()) {
                // Replaced meanwhile by another node's feed of the brand, since gone: back.
                if !r.carries(&known) && r.free_for(&known) {
                    r.add_feed(known);
                }
                continue;
            }
            let (pli_tx, mut pli_rx) = mpsc::channel::<()>(1);
            let feed = Arc::new(
                Feed::new(
                    self.next_id.fetch_add(1, Ordering::Relaxed),
                    f.brand.clone(),
                    session.clone(),
                    f.codec.source_codec(),
                    pli_tx,
                )
                .relayed(),
            );
            let (to_origin, id) = (relay.clone(), f.id);
            self.spawn(async move {
                while pli_rx.recv().await.is_some() {
                    to_origin.pli(sub, id, origin);
                }
            });
            tracing::debug!(room, brand = %f.brand, feed = f.id, %origin, "relayed feed");
            relay.inbound.insert(
                (sub, f.id),
                Inbound {
                    room: Arc::downgrade(&r),
                    feed: feed.clone(),
                },
            );
            r.add_feed(feed);
        }
        relay.hello(sub, origin);
        Ok(())
    }

    /// Edge side: subscription `sub` ended (the room has no viewer here any more, or its
    /// origin is gone): its feeds leave the room.
    pub fn drop_relay(&self, room: &str, sub: u64) {
        let Some(relay) = self.relay() else { return };
        let session = relay_session(sub);
        let mut brands = Vec::new();
        relay.inbound.retain(|k, i| {
            if k.0 == sub {
                brands.push(i.feed.brand.clone());
                false
            } else {
                true
            }
        });
        if let Some(r) = self.room_media(room) {
            for b in brands {
                r.remove_feeds(&b, &session);
            }
        }
    }
}

/// The session name relayed feeds of a subscription carry in their room.
fn relay_session(sub: u64) -> String {
    format!("relay-{sub:016x}")
}
