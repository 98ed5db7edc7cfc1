//! The media cascade's data plane: a room's feeds carried from the node they are published
//! on (their origin) to the other nodes that have WHEP viewers of the room (edges), as RTP
//! fields over UDP on a socket of its own, every datagram sealed with the subscription's key
//! (`relay_crypto`; see docs/cluster.md, "Media across nodes").
//!
//! The control plane is not here: the cluster layer asks an origin for a room's feeds on an
//! edge's behalf (`Media::relay_offer` there, `Media::follow_relay` here) with a subscription
//! id and key the edge chose. The edge then sends `HELLO` datagrams from its relay socket; the
//! origin sends each packet of the room's feeds to the address those come from, until the
//! subscription is not renewed. Every datagram names the subscription and is authenticated
//! with its key, so a packet is only taken for the feed the edge was offered under that id,
//! and only from the origin that holds the key.
//!
//! On the edge a relayed feed is an ordinary `Feed` of the room: the program, the switch and
//! the per-viewer rewrite are the same as for a local publisher, NACKs are answered by each
//! viewer's own PeerConnection from what it sent, and a viewer's key-frame request goes back
//! to the origin as a `PLI` datagram, where the feed's own throttle merges them.
//!
//! Datagrams (integers big-endian), each `tag | sub u64 | counter u64 | sealed body | GCM tag`:
//! - `RTP`   `0xC1`, body `feed u64 | seq u16 | ts u32 | flags u8 (bit 0: marker) | payload`
//! - `HELLO` `0xC2`, empty body
//! - `PLI`   `0xC3`, body `feed u64`
//! - `NACK`  `0xC4`, body `feed u64 | count u16 | seq u16 × count`: an edge that saw a gap in
//!   a relayed feed's numbers asks for those packets again, once; the origin resends those it
//!   still keeps (`KEPT_FOR_RESEND` per feed) to that edge alone. A late or resent packet
//!   keeps its place in the stream (the rewrite maps numbers within a run).

use super::keyframe::VideoCodec;
use super::relay_crypto::{self, Direction, Sealed, SubKey};
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
const TAG_NACK: u8 = 0xC4;
/// Packets of each local feed an origin keeps to resend: about 2 s of video.
const KEPT_FOR_RESEND: usize = 512;
/// Most sequence numbers one `NACK` names.
const NACK_MAX: usize = 64;
/// A jump in a relayed feed's numbers larger than this is not losses to ask for (a new run
/// of the feed, a long outage).
const NACK_GAP_MAX: u16 = 128;
/// Bytes of an `RTP` body before the payload.
const RTP_BODY: usize = 8 + 2 + 4 + 1;
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
    /// Seals the room's packets for the edge, opens its `HELLO`s and `PLI`s.
    sealed: Arc<Sealed>,
}

/// A relayed feed on the edge.
struct Inbound {
    room: Weak<RoomMedia>,
    feed: Arc<Feed>,
    /// The origin's relay address (where `NACK`s go).
    origin: SocketAddr,
    /// The sequence number expected next.
    expect: Mutex<Option<u16>>,
}

impl Inbound {
    /// The numbers skipped before `seq`, to ask for again (none for a late or resent
    /// packet, or a jump too large to be losses).
    fn gap(&self, seq: u16) -> Vec<u16> {
        let mut expect = self.expect.lock();
        let Some(next) = *expect else {
            *expect = Some(seq.wrapping_add(1));
            return Vec::new();
        };
        let ahead = seq.wrapping_sub(next);
        if ahead >= 0x8000 {
            return Vec::new();
        }
        *expect = Some(seq.wrapping_add(1));
        if ahead == 0 || ahead > NACK_GAP_MAX {
            return Vec::new();
        }
        (0..ahead).map(|k| next.wrapping_add(k)).collect()
    }
}

/// A packet as an origin keeps it to resend.
#[derive(Clone)]
struct Kept {
    seq: u16,
    ts: u32,
    marker: bool,
    payload: Bytes,
}

/// The last packets of a local feed that is relayed, by sequence number (payloads shared,
/// not copied), to resend to an edge that missed them.
#[derive(Default)]
pub(super) struct SentPackets {
    ring: Mutex<Vec<Option<Kept>>>,
}

impl SentPackets {
    pub(super) fn keep(&self, p: &rtp::Packet) {
        let mut ring = self.ring.lock();
        if ring.is_empty() {
            ring.resize(KEPT_FOR_RESEND, None);
        }
        let seq = p.header.sequence_number;
        ring[seq as usize % KEPT_FOR_RESEND] = Some(Kept {
            seq,
            ts: p.header.timestamp,
            marker: p.header.marker,
            payload: p.payload.clone(),
        });
    }

    fn get(&self, seq: u16) -> Option<Kept> {
        let ring = self.ring.lock();
        ring.get(seq as usize % KEPT_FOR_RESEND)?
            .as_ref()
            .filter(|k| k.seq == seq)
            .cloned()
    }
}

/// A datagram from an edge, opened: its body and its subscription.
struct FromEdge<'a> {
    body: &'a [u8],
    room: String,
    sub: u64,
    sealed: Arc<Sealed>,
    addr: Option<SocketAddr>,
}

/// An `RTP` datagram's body.
fn rtp_body(feed: u64, seq: u16, ts: u32, marker: bool, payload: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(RTP_BODY + payload.len());
    body.extend_from_slice(&feed.to_be_bytes());
    body.extend_from_slice(&seq.to_be_bytes());
    body.extend_from_slice(&ts.to_be_bytes());
    body.push(u8::from(marker));
    body.extend_from_slice(payload);
    body
}

/// Where an origin sends one room's packets: (subscription, edge address).
pub(super) type Targets = Vec<(Arc<Sealed>, SocketAddr)>;

/// The node's relay socket and both sides' tables.
pub struct Relay {
    socket: Arc<UdpSocket>,
    /// Origin side: subscriptions by id.
    subs: Mutex<HashMap<u64, Subscription>>,
    /// Edge side: relayed feeds by (subscription, feed id at the origin).
    inbound: DashMap<(u64, u64), Inbound>,
    /// Edge side: this node's subscriptions at origins, by id.
    upstream: DashMap<u64, Arc<Sealed>>,
    /// `showfloor_media_relay_sent_total` / `…_received_total` / `…_resent_total`.
    sent: prometheus_client::metrics::counter::Counter,
    received: prometheus_client::metrics::counter::Counter,
    resent: prometheus_client::metrics::counter::Counter,
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
            upstream: DashMap::new(),
            sent: stats.relay_sent.clone(),
            received: stats.relay_received.clone(),
            resent: stats.relay_resent.clone(),
        }))
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Sends a packet of a local feed to every edge in `targets`; never waits (a full socket
    /// buffer drops, as UDP does).
    pub(super) fn send(&self, targets: &Targets, feed: u64, p: &rtp::Packet) {
        let h = &p.header;
        let body = rtp_body(feed, h.sequence_number, h.timestamp, h.marker, &p.payload);
        let mut buf = Vec::with_capacity(relay_crypto::HEADER + body.len() + relay_crypto::TAG_LEN);
        for (sealed, addr) in targets {
            sealed.seal(TAG_RTP, &body, &mut buf);
            if self.socket.try_send_to(&buf, *addr).is_ok() {
                self.sent.inc();
            }
        }
    }

    /// Sends a kept packet again, to one edge.
    fn resend(&self, sealed: &Sealed, to: SocketAddr, feed: u64, k: &Kept) {
        let mut buf = Vec::new();
        sealed.seal(
            TAG_RTP,
            &rtp_body(feed, k.seq, k.ts, k.marker, &k.payload),
            &mut buf,
        );
        if self.socket.try_send_to(&buf, to).is_ok() {
            self.resent.inc();
        }
    }

    fn nack(&self, sealed: &Sealed, feed: u64, seqs: &[u16], to: SocketAddr) {
        for chunk in seqs.chunks(NACK_MAX) {
            let mut body = Vec::with_capacity(10 + 2 * chunk.len());
            body.extend_from_slice(&feed.to_be_bytes());
            body.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
            for s in chunk {
                body.extend_from_slice(&s.to_be_bytes());
            }
            let mut b = Vec::new();
            sealed.seal(TAG_NACK, &body, &mut b);
            let _ = self.socket.try_send_to(&b, to);
        }
    }

    fn hello(&self, sealed: &Sealed, to: SocketAddr) {
        let mut b = Vec::with_capacity(relay_crypto::HEADER + relay_crypto::TAG_LEN);
        sealed.seal(TAG_HELLO, &[], &mut b);
        let _ = self.socket.try_send_to(&b, to);
    }

    fn pli(&self, sealed: &Sealed, feed: u64, to: SocketAddr) {
        let mut b = Vec::with_capacity(relay_crypto::HEADER + 8 + relay_crypto::TAG_LEN);
        sealed.seal(TAG_PLI, &feed.to_be_bytes(), &mut b);
        let _ = self.socket.try_send_to(&b, to);
    }

    /// The edges a room's packets go to now.
    fn targets_of(&self, room: &str) -> Targets {
        self.subs
            .lock()
            .values()
            .filter(|s| s.room == room)
            .filter_map(|s| s.addr.map(|a| (s.sealed.clone(), a)))
            .collect()
    }

    /// Origin side: a datagram from an edge, opened with its subscription's key.
    fn open_from_edge<'a>(&self, d: &'a mut [u8]) -> Option<FromEdge<'a>> {
        let sub = relay_crypto::sub_of(d)?;
        let (sealed, room, addr) = {
            let subs = self.subs.lock();
            let s = subs.get(&sub)?;
            (s.sealed.clone(), s.room.clone(), s.addr)
        };
        Some(FromEdge {
            body: sealed.open(d)?,
            room,
            sub,
            sealed,
            addr,
        })
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
        // Anything that does not open with its subscription's key is dropped unread.
        let d = &mut buf[..n];
        match d[0] {
            TAG_RTP => {
                let Some(sealed) = relay_crypto::sub_of(d)
                    .and_then(|sub| relay.upstream.get(&sub).map(|s| s.clone()))
                else {
                    continue;
                };
                let Some(body) = sealed.open(d).filter(|b| b.len() >= RTP_BODY) else {
                    continue;
                };
                let (feed_id, seq) = (be_u64(body), u16::from_be_bytes([body[8], body[9]]));
                let Some((room, feed, origin, missing)) = relay
                    .inbound
                    .get(&(sealed.sub(), feed_id))
                    .and_then(|i| Some((i.room.upgrade()?, i.feed.clone(), i.origin, i.gap(seq))))
                else {
                    continue;
                };
                relay.received.inc();
                if !missing.is_empty() {
                    relay.nack(&sealed, feed_id, &missing, origin);
                }
                let p = rtp::Packet {
                    header: rtp::Header {
                        version: 2,
                        sequence_number: seq,
                        timestamp: u32::from_be_bytes([body[10], body[11], body[12], body[13]]),
                        marker: body[14] & 1 == 1,
                        ..Default::default()
                    },
                    payload: Bytes::copy_from_slice(&body[RTP_BODY..]),
                };
                room.on_packet(&feed, &p);
            }
            TAG_HELLO => {
                let Some(FromEdge { room, sub, .. }) = relay.open_from_edge(d) else {
                    continue;
                };
                let moved = {
                    let mut subs = relay.subs.lock();
                    match subs.get_mut(&sub) {
                        Some(s) if s.addr != Some(from) => {
                            s.addr = Some(from);
                            true
                        }
                        _ => false,
                    }
                };
                if let (true, Some(m)) = (moved, media.upgrade()) {
                    m.retarget_relay(&room);
                }
            }
            TAG_PLI => {
                let Some(e) = relay.open_from_edge(d).filter(|e| e.body.len() >= 8) else {
                    continue;
                };
                if let Some(r) = media.upgrade().and_then(|m| m.room_media(&e.room)) {
                    r.relayed_keyframe_request(be_u64(e.body));
                }
            }
            TAG_NACK => {
                let Some(e) = relay.open_from_edge(d).filter(|e| e.body.len() >= 10) else {
                    continue;
                };
                let (feed_id, count) = (be_u64(e.body), u16::from_be_bytes([e.body[8], e.body[9]]));
                let seqs = e.body[10..]
                    .chunks_exact(2)
                    .take((count as usize).min(NACK_MAX));
                let feed = media
                    .upgrade()
                    .and_then(|m| m.room_media(&e.room))
                    .and_then(|r| r.local_feed(feed_id));
                let (Some(feed), Some(to)) = (feed, e.addr) else {
                    continue;
                };
                for s in seqs {
                    if let Some(k) = feed.relay_sent.get(u16::from_be_bytes([s[0], s[1]])) {
                        relay.resend(&e.sealed, to, feed_id, &k);
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
        sub: SubKey,
    ) -> Result<Vec<RelayedFeed>, super::MediaError> {
        let Some(relay) = self.relay() else {
            return Err(super::MediaError::Unavailable(
                "this node has no relay socket".into(),
            ));
        };
        let r = self.room_for(room).await?;
        let until = Instant::now() + SUBSCRIPTION_TTL;
        let mut subs = relay.subs.lock();
        match subs.get_mut(&sub.id) {
            // Renewed by the edge that chose it (the same key: a new key under an old id is
            // not that edge's, and changes nothing).
            Some(s) if s.room == room && s.sealed.same_key(&sub) => s.until = until,
            Some(_) => {}
            None => {
                subs.insert(
                    sub.id,
                    Subscription {
                        room: room.to_string(),
                        addr: None,
                        until,
                        sealed: Arc::new(Sealed::new(&sub, Direction::ToEdge)),
                    },
                );
            }
        }
        drop(subs);
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
        key: SubKey,
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
        let sub = key.id;
        let sealed = relay
            .upstream
            .entry(sub)
            .or_insert_with(|| Arc::new(Sealed::new(&key, Direction::ToOrigin)))
            .clone();
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
            let (to_origin, sealed, id) = (relay.clone(), sealed.clone(), f.id);
            self.spawn(async move {
                while pli_rx.recv().await.is_some() {
                    to_origin.pli(&sealed, id, origin);
                }
            });
            tracing::debug!(room, brand = %f.brand, feed = f.id, %origin, "relayed feed");
            relay.inbound.insert(
                (sub, f.id),
                Inbound {
                    room: Arc::downgrade(&r),
                    feed: feed.clone(),
                    origin,
                    expect: Mutex::new(None),
                },
            );
            r.add_feed(feed);
        }
        relay.hello(&sealed, origin);
        Ok(())
    }

    /// Edge side: subscription `sub` ended (the room has no viewer here any more, or its
    /// origin is gone): its feeds leave the room.
    pub fn drop_relay(&self, room: &str, sub: u64) {
        let Some(relay) = self.relay() else { return };
        relay.upstream.remove(&sub);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn inbound() -> Inbound {
        let (pli, _) = mpsc::channel(1);
        let codec = RelayedCodec::Vp8.source_codec();
        Inbound {
            room: Weak::new(),
            feed: Arc::new(Feed::new(1, "b".into(), "s".into(), codec, pli)),
            origin: "127.0.0.1:1".parse().unwrap(),
            expect: Mutex::new(None),
        }
    }

    #[test]
    fn an_edge_asks_again_for_the_numbers_it_skipped_and_only_those() {
        let i = inbound();
        assert!(i.gap(100).is_empty(), "the first packet");
        assert!(i.gap(101).is_empty());
        assert_eq!(i.gap(104), vec![102, 103]);
        assert!(i.gap(102).is_empty(), "a resent packet is late, not a gap");
        assert!(i.gap(105).is_empty());
        // Across the wrap of 16-bit numbers.
        let i = inbound();
        i.gap(65534);
        assert_eq!(i.gap(1), vec![65535, 0]);
        // A jump too large to be losses (a new run) asks for nothing, and numbering goes on
        // from there.
        let jump = 2 + NACK_GAP_MAX + 1;
        assert!(i.gap(jump).is_empty());
        assert_eq!(i.gap(jump + 3), vec![jump + 1, jump + 2]);
    }

    #[test]
    fn an_origin_resends_what_it_still_keeps() {
        let kept = SentPackets::default();
        let p = |seq: u16| rtp::Packet {
            header: rtp::Header {
                sequence_number: seq,
                timestamp: u32::from(seq) * 90,
                ..Default::default()
            },
            payload: Bytes::from(vec![seq as u8; 10]),
        };
        for seq in 0..600u16 {
            kept.keep(&p(seq));
        }
        let k = kept.get(599).expect("the last one");
        assert_eq!(
            (k.seq, k.ts, k.payload[0]),
            (599, 599 * 90, (599 % 256) as u8)
        );
        assert!(kept.get(600 - KEPT_FOR_RESEND as u16).is_some());
        assert!(
            kept.get(599 - KEPT_FOR_RESEND as u16).is_none(),
            "overwritten"
        );
        assert!(kept.get(700).is_none(), "never sent");
    }
}
