//! A node behind a 1:1 NAT (a cloud VM with an elastic IP, a Kubernetes node's external IP):
//! with `--media-public-ip`, its WHIP and WHEP answers name the public address at the media
//! port and never its own private one, and media flows through the NAT. The NAT here is a
//! UDP relay on another loopback address that keeps the port, as a 1:1 NAT does.

mod common;

use common::rtc_client::{WhepViewer, WhipPublisher};
use common::{setup_show, udp_relay, Server, WAIT};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PUBLIC: &str = "127.0.0.3";

/// The (address, port) of every candidate line of an SDP.
fn candidates(sdp: &str) -> Vec<(String, String)> {
    sdp.lines()
        .filter_map(|l| l.strip_prefix("a=candidate:"))
        .map(|c| {
            let f: Vec<&str> = c.split(' ').collect();
            (f[4].to_string(), f[5].to_string())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_one_to_one_nat_clients_are_sent_to_the_public_address() {
    let public: IpAddr = PUBLIC.parse().unwrap();
    let server = Server::start_with(|c| c.media_public_ips = vec![public]).await;
    let mut c = server.control().await;
    let show = setup_show(&mut c).await;
    let (http, media) = (server.app().http_addr, server.app().media.udp_addr());
    // The NAT: the public address at the same port, forwarding to the node.
    let nat = udp_relay::relay(
        SocketAddr::new(public, media.port()),
        media,
        Arc::new(AtomicBool::new(false)),
    )
    .await;

    let ta = c.presenter_token(&show.room, &show.brand_a).await;
    let publisher = WhipPublisher::connect(http, &show.room, &show.brand_a, &ta)
        .await
        .unwrap();
    let token = c.token(&show.room, "outside").await;
    let mut viewer = WhepViewer::connect(http, &show.room, &token).await.unwrap();
    for sdp in [&publisher.answer, &viewer.answer] {
        let found = candidates(sdp);
        assert!(!found.is_empty(), "{sdp}");
        assert!(
            found
                .iter()
                .all(|(ip, port)| ip == PUBLIC && *port == media.port().to_string()),
            "only {nat} is announced: {found:?}"
        );
    }
    viewer.wait_connected().await;
    let t = Instant::now();
    while viewer.received.video_count.load(Ordering::SeqCst) < 30 {
        assert!(t.elapsed() < WAIT, "video through the NAT");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(viewer.leave().await, 200);
    assert_eq!(publisher.stop().await, 200);
}

/// A public address that clients cannot send to is refused at start, with the reason.
#[test]
fn an_unusable_public_address_is_a_configuration_error() {
    let out = common::bin()
        .args(["serve", "--dev", "--media-public-ip", "0.0.0.0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("media_public_ip 0.0.0.0"), "{err}");
}
