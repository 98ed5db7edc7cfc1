//! The harness against a server that serves TLS itself (a CA made by the test): viewers over
//! `wss://`, the control plane over gRPC with TLS, WHEP subscribers and `/metrics` over
//! `https://` — the switchover scenario, small, passes as it does in plain.

use showfloor::app::App;
use showfloor::config::Config;
use showfloor_loadtest::rtc::Stream;
use showfloor_loadtest::switchover::{switchover, Switchover};
use showfloor_loadtest::tls::Tls;
use showfloor_loadtest::Target;
use std::time::Duration;

const KEY: &str = "loadtest-tls-key-0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_harness_speaks_tls_to_a_tls_server() {
    let dir = tempfile::tempdir().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().unwrap())
        .unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &ca)
        .unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, leaf.pem()).unwrap();
    std::fs::write(&key, leaf_key.serialize_pem()).unwrap();

    let mut config = Config::for_tests(dir.path().to_path_buf(), KEY);
    config.tls = Some((cert, key));
    let app = App::start(config).await.expect("server starts");
    let target = Target {
        http: app.http_addr,
        viewer_http: vec![app.http_addr],
        grpc: format!("https://{}", app.grpc_addr),
        api_key: KEY.into(),
        tls: Some(Tls::new(Some(ca.pem().into_bytes()), None).unwrap()),
    };
    let o = Switchover {
        viewers: 50,
        subscribers: 3,
        brands: 2,
        switches: 3,
        interval: Duration::from_millis(800),
        stream: Stream {
            packets_per_s: 100,
            ..Stream::default()
        },
    };
    let report = switchover(&target, &o, false).await.unwrap();
    println!("{}", report.human());
    assert!(report.passed(), "{}", report.human());
    assert_eq!(report.numbers["brand_switched_ms"]["count"], 50 * 3);
    assert!(
        showfloor_loadtest::metric(&target, "showfloor_connections")
            .await
            .is_some(),
        "/metrics over https"
    );
    // Without the CA the same server is refused.
    let stranger = Target {
        tls: Some(Tls::new(None, None).unwrap()),
        ..target.clone()
    };
    assert!(stranger.control().await.is_err());
    app.shutdown().await;
}
