//! A UDP relay between clients and a server: what a NAT or a network path does to WebRTC
//! media, under the test's control.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::net::UdpSocket;

/// Relays clients' UDP, received on `front` (`PORT` 0: any free one), to `server` and back,
/// each client from a socket of its own (as a NAT maps each inside address to its own
/// outside port), dropping everything while `silent`. Returns the address clients send to.
pub async fn relay(front: SocketAddr, server: SocketAddr, silent: Arc<AtomicBool>) -> SocketAddr {
    lossy(front, server, silent, 0).await
}

/// As `relay`, also dropping every `drop_every`-th datagram from the server to a client
/// (0: none), as a lossy network path does.
pub async fn lossy(
    front: SocketAddr,
    server: SocketAddr,
    silent: Arc<AtomicBool>,
    drop_every: usize,
) -> SocketAddr {
    let front = Arc::new(UdpSocket::bind(front).await.unwrap());
    let addr = front.local_addr().unwrap();
    tokio::spawn(async move {
        let mut backs: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
        let mut buf = vec![0u8; 2048];
        while let Ok((n, from)) = front.recv_from(&mut buf).await {
            let back = match backs.get(&from) {
                Some(b) => b.clone(),
                None => {
                    let back = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
                    back.connect(server).await.unwrap();
                    let (to_client, front, silent) = (back.clone(), front.clone(), silent.clone());
                    tokio::spawn(async move {
                        let mut buf = vec![0u8; 2048];
                        let mut count = 0usize;
                        while let Ok(n) = to_client.recv(&mut buf).await {
                            count += 1;
                            let dropped = drop_every > 0 && count.is_multiple_of(drop_every);
                            if !dropped && !silent.load(Ordering::SeqCst) {
                                let _ = front.send_to(&buf[..n], from).await;
                            }
                        }
                    });
                    backs.insert(from, back.clone());
                    back
                }
            };
            if !silent.load(Ordering::SeqCst) {
                let _ = back.send(&buf[..n]).await;
            }
        }
    });
    addr
}
