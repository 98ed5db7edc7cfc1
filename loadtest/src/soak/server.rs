//! The server under soak as a child process: `showfloor serve` on loopback ports of its own,
//! killed with SIGKILL and started again on the same ports and data directory.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

/// How long a start may take until `/readyz` answers 200 (it opens and loads the store).
const READY_WITHIN: Duration = Duration::from_secs(60);
/// Starts on the same ports tried this many times: a port of the killed process can stay
/// taken for a moment.
const START_ATTEMPTS: u32 = 20;

/// How to start the server.
#[derive(Debug, Clone)]
pub struct ServerSpec {
    /// The `showfloor` binary.
    pub bin: PathBuf,
    /// Its `--data-dir`: the SQLite store that survives every kill.
    pub data_dir: PathBuf,
    pub api_key: String,
    /// Every start's log is appended here.
    pub log: PathBuf,
}

/// A running (or just killed) `showfloor serve`.
pub struct Server {
    spec: ServerSpec,
    child: Child,
    pub http: SocketAddr,
    pub grpc: SocketAddr,
    /// Process starts so far (1 after the first).
    pub starts: u32,
}

impl Server {
    /// Starts the server on ports the kernel picks; later starts reuse them.
    pub async fn start(spec: ServerSpec) -> anyhow::Result<Server> {
        let any: SocketAddr = "127.0.0.1:0".parse()?;
        let (child, http, grpc) = spawn(&spec, any, any).await?;
        Ok(Server {
            spec,
            child,
            http,
            grpc,
            starts: 1,
        })
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// SIGKILL, and reap: no drain, no flush, as a crash or an OOM kill.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        if self.child.try_wait()?.is_some() {
            return Ok(());
        }
        self.child
            .start_kill()
            .map_err(|e| anyhow::anyhow!("cannot kill the server: {e}"))?;
        self.child.wait().await?;
        Ok(())
    }

    /// Starts it again on the same ports and data directory; returns once it is ready.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        let mut last = None;
        for _ in 0..START_ATTEMPTS {
            match spawn(&self.spec, self.http, self.grpc).await {
                Ok((child, _, _)) => {
                    self.child = child;
                    self.starts += 1;
                    return Ok(());
                }
                Err(e) => {
                    last = Some(e);
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            }
        }
        Err(last
            .unwrap_or_else(|| anyhow::anyhow!("no attempt made"))
            .context(format!(
                "the server did not start again on {} / {} after {START_ATTEMPTS} attempts",
                self.http, self.grpc
            )))
    }
}

/// Starts `serve`, copies its stderr into the log and waits for its "showfloor serving"
/// line and for `/readyz`.
async fn spawn(
    spec: &ServerSpec,
    http: SocketAddr,
    grpc: SocketAddr,
) -> anyhow::Result<(Child, SocketAddr, SocketAddr)> {
    let mut child = Command::new(&spec.bin)
        .arg("serve")
        .arg("--http-addr")
        .arg(http.to_string())
        .arg("--grpc-addr")
        .arg(grpc.to_string())
        .args(["--media-udp-addr", "127.0.0.1:0"])
        .args(["--relay-udp-addr", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(&spec.data_dir)
        .env("SHOWFLOOR_API_KEYS", &spec.api_key)
        .env("SHOWFLOOR_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| anyhow::anyhow!("cannot run {}: {e}", spec.bin.display()))?;
    let stderr = child.stderr.take().expect("stderr is piped");
    let mut log = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&spec.log)
        .await
        .map_err(|e| anyhow::anyhow!("cannot open the log {}: {e}", spec.log.display()))?;
    let (tx, mut rx) = tokio::sync::mpsc::channel(1);
    tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("showfloor serving") {
                let _ = tx.try_send((field(&line, "http_addr="), field(&line, "grpc_addr=")));
            }
            let _ = log.write_all(line.as_bytes()).await;
            let _ = log.write_all(b"\n").await;
        }
        let _ = log.flush().await;
    });
    let started = Instant::now();
    let fail = |child: &mut Child, why: String| {
        let _ = child.start_kill();
        anyhow::anyhow!("{why} (its log: {})", spec.log.display())
    };
    let (http, grpc) = loop {
        if let Some(status) = child.try_wait()? {
            return Err(fail(
                &mut child,
                format!("the server exited ({status}) before serving"),
            ));
        }
        match tokio::time::timeout(Duration::from_millis(100), rx.recv()).await {
            Ok(Some((Some(h), Some(g)))) => break (h, g),
            Ok(_) => {
                return Err(fail(
                    &mut child,
                    "the server did not log the addresses it serves on".into(),
                ))
            }
            Err(_) if started.elapsed() > READY_WITHIN => {
                return Err(fail(&mut child, "the server did not start serving".into()))
            }
            Err(_) => {}
        }
    };
    let ready = format!("http://{http}/readyz");
    loop {
        let ok = crate::http_client()
            .get(&ready)
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ok {
            return Ok((child, http, grpc));
        }
        if let Some(status) = child.try_wait()? {
            return Err(fail(&mut child, format!("the server exited ({status})")));
        }
        if started.elapsed() > READY_WITHIN {
            return Err(fail(&mut child, "the server did not become ready".into()));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The address in `name=HOST:PORT` of a log line.
fn field(line: &str, name: &str) -> Option<SocketAddr> {
    let rest = &line[line.find(name)? + name.len()..];
    rest.split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::field;

    #[test]
    fn the_addresses_are_read_from_the_serving_line() {
        let line = "2026-12-05T06:00:00Z  INFO showfloor::app: showfloor serving \
                    http_addr=127.0.0.1:4100 grpc_addr=127.0.0.1:4101 media_udp=127.0.0.1:4102";
        assert_eq!(field(line, "http_addr="), "127.0.0.1:4100".parse().ok());
        assert_eq!(field(line, "grpc_addr="), "127.0.0.1:4101".parse().ok());
        assert_eq!(field(line, "nothing="), None);
    }
}
