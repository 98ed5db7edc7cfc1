//! `showfloor serve` as a child process, on ports the kernel chose.
//!
//! Tests used to pick "a port that was free a moment ago" and pass it on the command line; a
//! connection opened meanwhile by another test could take that port as its source port, and the
//! server then failed to bind and the test saw only "did not become ready". Here the server
//! binds port 0 and the test reads the addresses back from its "showfloor serving" log line.
//! The log is kept, and shown when the server exits or is not ready in time.

use parking_lot::Mutex;
use std::ffi::OsStr;
use std::io::BufRead;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a server process may take to listen and become ready (it may wait for its store
/// or NATS).
const READY_WITHIN: Duration = Duration::from_secs(60);

/// A running `showfloor serve` process. Dropping it kills the process if it still runs.
pub struct Served {
    pub child: Child,
    pub http: u16,
    pub grpc: u16,
    log: Arc<Mutex<String>>,
}

impl Served {
    /// Starts `showfloor serve ARGS` listening on loopback ports of its own and waits until
    /// `/readyz` answers 200. Panics with the server's log if it exits or is not ready in time.
    /// Set `SHOWFLOOR_TEST_NODE_LOGS=1` to see every server's log as it runs.
    pub async fn start<I, S>(args: I) -> Served
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Served::start_logging(args, Some("info")).await
    }

    /// As [`Served::start`], logging what `filter` (`SHOWFLOOR_LOG`; `None`: the server's
    /// default) lets through.
    pub async fn start_logging<I, S>(args: I, filter: Option<&str>) -> Served
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut command = super::bin();
        command
            .arg("serve")
            .args(["--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0"])
            .args([
                "--media-udp-addr",
                "127.0.0.1:0",
                "--relay-udp-addr",
                "127.0.0.1:0",
            ])
            // No shedding by load: a debug build sharing two cores with Chromium runs late for
            // reasons of the test machine (tests/media_shedding.rs tests the shedding).
            .args(["--media-shed-lag-ms", "0"])
            .args(args);
        match filter {
            Some(f) => command.env("SHOWFLOOR_LOG", f),
            None => command.env_remove("SHOWFLOOR_LOG"),
        };
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning showfloor");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().expect("piped stderr");
        let kept = log.clone();
        let echo = std::env::var_os("SHOWFLOOR_TEST_NODE_LOGS").is_some();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if echo {
                    eprintln!("{line}");
                }
                if line.contains("showfloor serving") {
                    let _ = tx.send((field(&line, "http_addr="), field(&line, "grpc_addr=")));
                }
                let mut kept = kept.lock();
                kept.push_str(&line);
                kept.push('\n');
            }
        });
        let started = Instant::now();
        let (http, grpc) = loop {
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok((Some(http), Some(grpc))) => break (http, grpc),
                Ok(_) => fail(&mut child, &log, "logged no addresses it serves on"),
                Err(_) => {
                    if let Some(status) = child.try_wait().unwrap() {
                        fail(
                            &mut child,
                            &log,
                            &format!("exited ({status}) before serving"),
                        );
                    }
                    if started.elapsed() > READY_WITHIN {
                        fail(&mut child, &log, "did not start serving");
                    }
                }
            }
        };
        let mut served = Served {
            child,
            http,
            grpc,
            log,
        };
        while !super::readyz(served.http).await {
            if let Some(status) = served.child.try_wait().unwrap() {
                fail(
                    &mut served.child,
                    &served.log,
                    &format!("exited ({status})"),
                );
            }
            if started.elapsed() > READY_WITHIN {
                fail(&mut served.child, &served.log, "did not become ready");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        served
    }

    /// What the server has logged so far.
    pub fn log(&self) -> String {
        self.log.lock().clone()
    }

    /// `127.0.0.1:PORT` of the HTTP port.
    pub fn http_addr(&self) -> String {
        format!("127.0.0.1:{}", self.http)
    }

    /// Waits for the process to exit, without blocking the runtime.
    pub async fn exited(&mut self) -> std::process::ExitStatus {
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILL and reap: no shutdown, no flush.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `serve` as node `id` of a cluster on `nats` and `postgres` (host key [`super::KEY`], lease
/// TTL `ttl_secs`), with `extra` arguments after those.
pub async fn cluster_node(
    nats: &str,
    postgres: &str,
    id: &str,
    ttl_secs: u64,
    extra: &[&str],
) -> Served {
    let ttl = ttl_secs.to_string();
    let args = [
        "--api-key",
        super::KEY,
        "--node-id",
        id,
        "--nats",
        nats,
        "--postgres",
        postgres,
        "--lease-ttl-secs",
        &ttl,
    ];
    Served::start(args.iter().chain(extra)).await
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill();
        }
    }
}

/// The port of `name=HOST:PORT` in a log line.
fn field(line: &str, name: &str) -> Option<u16> {
    let rest = &line[line.find(name)? + name.len()..];
    let addr = rest.split_whitespace().next()?;
    addr.parse::<std::net::SocketAddr>().ok().map(|a| a.port())
}

fn fail(child: &mut Child, log: &Mutex<String>, what: &str) -> ! {
    let _ = child.kill();
    let _ = child.wait();
    // Give the reader a moment to take the last lines.
    std::thread::sleep(Duration::from_millis(100));
    panic!("showfloor serve {what}; its log:\n{}", log.lock());
}
