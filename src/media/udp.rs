//! One UDP port for every PeerConnection of the node. webrtc 0.21 has no UDP mux, but its
//! `Runtime` trait wraps every socket a connection binds: `MuxRuntime` hands each connection
//! virtual sockets fed from the one shared socket instead. Datagrams are routed by the ICE
//! username fragment of STUN requests, then by the peer address those checks came from.

use super::stun;
use dashmap::DashMap;
use parking_lot::Mutex;
use std::fmt;
use std::future::Future;
use std::io::{self, IoSliceMut};
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::mpsc;
use webrtc::runtime::{
    AsyncInterval, AsyncTcpListener, AsyncTcpStream, AsyncUdpSocket, JoinHandle, RecvMeta, Runtime,
    TokioRuntime, Transmit,
};

/// Datagrams queued per virtual socket before new ones are dropped (UDP semantics).
const SOCKET_QUEUE: usize = 512;
/// Largest datagram (or GRO batch) read from the shared socket.
const RECV_BUF: usize = 64 * 1024;

struct Datagram {
    data: Vec<u8>,
    from: SocketAddr,
}

/// The shared socket and the routing tables.
pub struct UdpMux {
    socket: Arc<dyn AsyncUdpSocket>,
    local: SocketAddr,
    by_ufrag: DashMap<String, Weak<Endpoint>>,
    by_peer: DashMap<SocketAddr, Weak<Endpoint>>,
    next_id: AtomicU64,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    pub dropped: AtomicU64,
}

impl fmt::Debug for UdpMux {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UdpMux")
            .field("local", &self.local)
            .finish()
    }
}

impl UdpMux {
    /// Binds the shared socket and starts its receive task.
    pub fn bind(addr: SocketAddr) -> io::Result<Arc<UdpMux>> {
        let std = std::net::UdpSocket::bind(addr)?;
        std.set_nonblocking(true)?;
        let local = std.local_addr()?;
        let socket = TokioRuntime.wrap_udp_socket(std)?;
        let mux = Arc::new(UdpMux {
            socket,
            local,
            by_ufrag: DashMap::new(),
            by_peer: DashMap::new(),
            next_id: AtomicU64::new(1),
            task: Mutex::new(None),
            dropped: AtomicU64::new(0),
        });
        let task = tokio::spawn(recv_loop(Arc::downgrade(&mux), mux.socket.clone()));
        *mux.task.lock() = Some(task);
        Ok(mux)
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The per-connection socket bind addresses: the shared socket's IP, any port (the
    /// connection's real socket is dropped; only its address is kept as a name).
    pub fn bind_addr(&self) -> SocketAddr {
        SocketAddr::new(self.local.ip(), 0)
    }

    /// A new endpoint for one PeerConnection, and the runtime that gives it virtual sockets.
    pub fn endpoint(self: &Arc<Self>) -> (Arc<Endpoint>, Arc<dyn Runtime>) {
        let ep = Arc::new(Endpoint {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            mux: Arc::downgrade(self),
            sockets: Mutex::new(Vec::new()),
            ufrags: Mutex::new(Vec::new()),
            peers: Mutex::new(Vec::new()),
        });
        let rt: Arc<dyn Runtime> = Arc::new(MuxRuntime {
            endpoint: ep.clone(),
        });
        (ep, rt)
    }

    pub fn close(&self) {
        if let Some(t) = self.task.lock().take() {
            t.abort();
        }
    }

    fn route(&self, data: &[u8], from: SocketAddr, dst_ip: Option<IpAddr>) {
        let mut target = None;
        if let Some(ufrag) = stun::binding_request_ufrag(data) {
            if let Some(ep) = self.by_ufrag.get(ufrag).and_then(|w| w.upgrade()) {
                ep.learn_peer(self, from);
                target = Some(ep);
            }
        }
        if target.is_none() {
            target = self.by_peer.get(&from).and_then(|w| w.upgrade());
        }
        match target {
            Some(ep) => {
                if !ep.deliver(data, from, dst_ip) {
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
            None => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

impl Drop for UdpMux {
    fn drop(&mut self) {
        if let Some(t) = self.task.get_mut().take() {
            t.abort();
        }
    }
}

async fn recv_loop(mux: Weak<UdpMux>, socket: Arc<dyn AsyncUdpSocket>) {
    let mut buf = vec![0u8; RECV_BUF];
    loop {
        let mut meta = [RecvMeta::default(); 1];
        let r = std::future::poll_fn(|cx| {
            let mut bufs = [IoSliceMut::new(&mut buf)];
            socket.poll_recv(cx, &mut bufs, &mut meta)
        })
        .await;
        let Some(mux) = mux.upgrade() else { return };
        match r {
            Ok(_) => {
                let m = meta[0];
                let stride = m.stride.max(1);
                let mut off = 0;
                // A GRO read may hold several datagrams of `stride` bytes each.
                while off < m.len {
                    let end = (off + stride).min(m.len);
                    mux.route(&buf[off..end], m.addr, m.dst_ip);
                    off = end;
                }
            }
            Err(e) => {
                // ICMP errors surface here on Linux; they concern one peer, not the socket.
                tracing::debug!(error = %e, "media udp recv");
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    }
}

/// One PeerConnection's share of the mux.
pub struct Endpoint {
    id: u64,
    mux: Weak<UdpMux>,
    /// Virtual sockets: (the address the connection believes it has, inbound queue).
    sockets: Mutex<Vec<(SocketAddr, mpsc::Sender<Datagram>)>>,
    ufrags: Mutex<Vec<String>>,
    peers: Mutex<Vec<SocketAddr>>,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint").field("id", &self.id).finish()
    }
}

impl Endpoint {
    /// Routes STUN requests naming `ufrag` to this endpoint (call with every local
    /// description's ufrags, before the remote side can send checks).
    pub fn register_ufrags(self: &Arc<Self>, ufrags: &[String]) {
        let Some(mux) = self.mux.upgrade() else {
            return;
        };
        let mut mine = self.ufrags.lock();
        for u in ufrags {
            if !mine.contains(u) {
                mux.by_ufrag.insert(u.clone(), Arc::downgrade(self));
                mine.push(u.clone());
            }
        }
    }

    /// The addresses the connection's sockets believe they have (to rewrite candidates).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.sockets.lock().iter().map(|(a, _)| *a).collect()
    }

    fn learn_peer(self: &Arc<Self>, mux: &UdpMux, peer: SocketAddr) {
        let mut peers = self.peers.lock();
        if peers.contains(&peer) {
            return;
        }
        mux.by_peer.insert(peer, Arc::downgrade(self));
        peers.push(peer);
    }

    fn deliver(&self, data: &[u8], from: SocketAddr, dst_ip: Option<IpAddr>) -> bool {
        let sockets = self.sockets.lock();
        let tx = sockets
            .iter()
            .find(|(a, _)| Some(a.ip()) == dst_ip)
            .or_else(|| sockets.first())
            .map(|(_, tx)| tx.clone());
        drop(sockets);
        match tx {
            Some(tx) => tx
                .try_send(Datagram {
                    data: data.to_vec(),
                    from,
                })
                .is_ok(),
            None => false,
        }
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        let Some(mux) = self.mux.upgrade() else {
            return;
        };
        let id = self.id;
        let is_me = |w: &Weak<Endpoint>| w.upgrade().map(|e| e.id == id).unwrap_or(true);
        for u in self.ufrags.get_mut().drain(..) {
            mux.by_ufrag.remove_if(&u, |_, w| is_me(w));
        }
        for p in self.peers.get_mut().drain(..) {
            mux.by_peer.remove_if(&p, |_, w| is_me(w));
        }
    }
}

/// A socket a PeerConnection reads and writes; the bytes go through the shared socket.
struct VirtualSocket {
    local: SocketAddr,
    endpoint: Arc<Endpoint>,
    mux: Arc<UdpMux>,
    rx: Mutex<mpsc::Receiver<Datagram>>,
}

impl fmt::Debug for VirtualSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VirtualSocket")
            .field("local", &self.local)
            .finish()
    }
}

impl AsyncUdpSocket for VirtualSocket {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }

    fn poll_send(&self, cx: &mut Context<'_>, transmit: &Transmit<'_>) -> Poll<io::Result<usize>> {
        // Our own connectivity checks: their answers come back from that peer.
        self.endpoint.learn_peer(&self.mux, transmit.destination);
        let t = Transmit {
            destination: transmit.destination,
            ecn: transmit.ecn,
            contents: transmit.contents,
            segment_size: transmit.segment_size,
            // On a wildcard socket, answer from the interface the connection's candidate names.
            src_ip: self
                .mux
                .local
                .ip()
                .is_unspecified()
                .then_some(self.local.ip()),
        };
        self.mux.socket.poll_send(cx, &t)
    }

    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        let mut rx = self.rx.lock();
        match rx.poll_recv(cx) {
            Poll::Ready(Some(d)) => {
                let n = d.data.len().min(bufs[0].len());
                bufs[0][..n].copy_from_slice(&d.data[..n]);
                let mut m = RecvMeta::default();
                m.addr = d.from;
                m.len = n;
                m.stride = n.max(1);
                meta[0] = m;
                Poll::Ready(Ok(1))
            }
            Poll::Ready(None) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "media mux closed",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Tokio for everything, except that UDP sockets are virtual sockets of the mux.
struct MuxRuntime {
    endpoint: Arc<Endpoint>,
}

impl fmt::Debug for MuxRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MuxRuntime")
            .field("endpoint", &self.endpoint.id)
            .finish()
    }
}

impl Runtime for MuxRuntime {
    fn spawn(&self, future: Pin<Box<dyn Future<Output = ()> + Send>>) -> Box<dyn JoinHandle> {
        TokioRuntime.spawn(future)
    }

    fn wrap_udp_socket(&self, socket: std::net::UdpSocket) -> io::Result<Arc<dyn AsyncUdpSocket>> {
        let mux = self
            .endpoint
            .mux
            .upgrade()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "media mux closed"))?;
        // The connection names its socket by this address; the socket itself is not used.
        let local = socket.local_addr()?;
        drop(socket);
        let (tx, rx) = mpsc::channel(SOCKET_QUEUE);
        {
            let mut sockets = self.endpoint.sockets.lock();
            // An ICE restart rebinds: the newest socket for an IP takes over.
            sockets.retain(|(a, _)| a.ip() != local.ip());
            sockets.push((local, tx));
        }
        Ok(Arc::new(VirtualSocket {
            local,
            endpoint: self.endpoint.clone(),
            mux,
            rx: Mutex::new(rx),
        }))
    }

    fn wrap_tcp_listener(
        &self,
        listener: std::net::TcpListener,
    ) -> io::Result<Arc<dyn AsyncTcpListener>> {
        TokioRuntime.wrap_tcp_listener(listener)
    }

    fn connect_tcp<'a>(
        &'a self,
        remote_addr: SocketAddr,
    ) -> Pin<Box<dyn Future<Output = io::Result<Arc<dyn AsyncTcpStream>>> + Send + 'a>> {
        Box::pin(async move { TokioRuntime.connect_tcp(remote_addr).await })
    }

    fn resolve_host<'a>(
        &'a self,
        host: &'a str,
    ) -> Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send + 'a>> {
        Box::pin(async move { TokioRuntime.resolve_host(host).await })
    }

    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        TokioRuntime.sleep(duration)
    }

    fn interval(&self, period: Duration) -> Box<dyn AsyncInterval> {
        TokioRuntime.interval(period)
    }

    fn block_on(&self, future: Pin<Box<dyn Future<Output = ()> + '_>>) {
        TokioRuntime.block_on(future)
    }

    fn name(&self) -> &'static str {
        "showfloor-mux"
    }
}
