//! The server the smoke tests drive: the real one, in-process, on port 0.

use showfloor::app::App;
use showfloor::config::Config;
use showfloor_loadtest::Target;

const KEY: &str = "loadtest-smoke-key-0123456789";

/// Starts a server with its own data directory; the harness's target for it.
pub async fn server() -> (App, Target, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let app = App::start(Config::for_tests(dir.path().to_path_buf(), KEY))
        .await
        .expect("server starts");
    let target = Target {
        http: app.http_addr,
        viewer_http: vec![app.http_addr],
        grpc: format!("http://{}", app.grpc_addr),
        api_key: KEY.into(),
        tls: None,
    };
    (app, target, dir)
}
