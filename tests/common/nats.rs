//! A nats-server of the test's own (JetStream, loopback, temporary store) that the test can stop and restart.
//!
//! Never the machine-wide server on 4222: each `NatsServer` runs on a free port of its own and
//! keeps its store in a temporary directory, so restarts recover exactly what the test wrote.
//! The Debian package `nats-server` is installed with apt-get if the binary is missing; a test
//! that cannot get a server fails rather than skips.

use std::fs::File;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long a start or restart may take before the test fails.
const READY_WITHIN: Duration = Duration::from_secs(20);

pub struct NatsServer {
    port: u16,
    store: tempfile::TempDir,
    child: Option<Child>,
    starts: usize,
}

impl NatsServer {
    /// Starts a server with JetStream on a free loopback port and waits until it is ready.
    /// The port is picked free beforehand (restarts reuse it); if another test's connection
    /// took it meanwhile, the server cannot bind and is started again on another.
    pub async fn start() -> NatsServer {
        let mut attempt = 0;
        loop {
            let port = {
                let l = TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
                l.local_addr().unwrap().port()
            };
            let mut server = NatsServer {
                port,
                store: tempfile::tempdir().expect("a temporary store directory"),
                child: None,
                starts: 0,
            };
            match server.try_spawn().await {
                Ok(()) => return server,
                Err(log) if log.contains("address already in use") && attempt < 5 => {
                    attempt += 1;
                }
                Err(log) => panic!("nats-server did not start on port {port}:\n{log}"),
            }
        }
    }

    /// The server's process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// A new connection (it reconnects by itself across restarts) and its JetStream context.
    pub async fn jetstream(&self) -> async_nats::jetstream::Context {
        let client = async_nats::connect(self.url())
            .await
            .unwrap_or_else(|e| panic!("connect to {}: {e}", self.url()));
        async_nats::jetstream::new(client)
    }

    /// Stops the server with SIGTERM (a clean shutdown) and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: plain kill(2) on the pid of a child we have not yet reaped.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
            child.wait().expect("nats-server exits");
        }
    }

    /// Kills the server with SIGKILL (no shutdown at all) and waits for it to exit.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port with the same store directory.
    pub async fn restart(&mut self) {
        self.kill();
        self.spawn().await;
    }

    fn log_path(&self) -> PathBuf {
        self.store.path().join("nats-server.log")
    }

    async fn spawn(&mut self) {
        if let Err(log) = self.try_spawn().await {
            panic!("nats-server did not start on port {}:\n{log}", self.port);
        }
    }

    /// Starts the server; its log if it exits or is not ready in time.
    async fn try_spawn(&mut self) -> Result<(), String> {
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("nats-server log file");
        let child = Command::new(binary())
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(self.store.path().join("js"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("nats-server starts");
        self.child = Some(child);
        self.starts += 1;
        self.wait_ready().await
    }

    /// Ready = this start logged "Server is ready" (JetStream has recovered its streams by
    /// then) and the port accepts connections.
    async fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
            let ready = log.matches("Server is ready").count() >= self.starts;
            if ready && TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                return Err(format!("exited ({status}):\n{log}"));
            }
            if Instant::now() > deadline {
                self.kill();
                return Err(format!("not ready within {READY_WITHIN:?}:\n{log}"));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The nats-server binary, installed from Debian's package the first time it is missing.
fn binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        if let Some(found) = find_binary() {
            return found;
        }
        let install = |args: &[&str]| {
            Command::new("apt-get")
                .args(args)
                .env("DEBIAN_FRONTEND", "noninteractive")
                .status()
                .is_ok_and(|s| s.success())
        };
        if !install(&["install", "-y", "nats-server"]) {
            install(&["update"]);
            install(&["install", "-y", "nats-server"]);
        }
        find_binary()
            .expect("nats-server is not installed and `apt-get install nats-server` failed")
    })
}

fn find_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/usr/local/bin"].map(PathBuf::from))
        .map(|dir| dir.join("nats-server"))
        .find(|p| p.is_file())
}
