//! The server the smoke tests drive: the real one, in-process, on port 0.

use showfloor::app::App;
use showfloor::config::Config;
use showfloor_loadtest::Target;

const KEY: &str = "loadtest-smoke-key-0123456789";

/// Starts a server with its own data directory; the harness's target for it.
#[allow(dead_code)] // not every test binary uses the defaults
pub async fn server() -> (App, Target, tempfile::TempDir) {
    server_with(|_| {}).await
}

/// As [`server`], with the test configuration changed first.
#[allow(dead_code)] // not every test binary changes it
pub async fn server_with(tweak: impl FnOnce(&mut Config)) -> (App, Target, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::for_tests(dir.path().to_path_buf(), KEY);
    tweak(&mut config);
    let app = App::start(config).await.expect("server starts");
    let target = Target {
        http: app.http_addr,
        viewer_http: vec![app.http_addr],
        grpc: format!("http://{}", app.grpc_addr),
        api_key: KEY.into(),
        tls: None,
    };
    (app, target, dir)
}
