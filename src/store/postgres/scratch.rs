//! A PostgreSQL server for tests and benches, and a fresh database on it per use.
//
// `SHOWFLOOR_TEST_POSTGRES` (a postgres:// URL to a server where the user may create
// databases) picks a server. Without it, this starts one of its own on 127.0.0.1:55432 with
// its data under the target directory (installing Debian's `postgresql` if no server binary
// is found) and leaves it running for the next test; a lock file keeps concurrent test
// processes from starting it twice. Each scratch database is named
// `showfloor_test_<pid>_<n>`; databases of processes that are gone are dropped at first use.

use super::PgTarget;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The port of the server this module starts.
pub const PORT: u16 = 55432;

/// The server's URL for the `postgres` database, started if need be.
pub fn server_url() -> String {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        let url = std::env::var("SHOWFLOOR_TEST_POSTGRES")
            .unwrap_or_else(|_| start_own().unwrap_or_else(|e| panic!("test PostgreSQL: {e}")));
        drop_stale_databases(&url);
        url
    })
    .clone()
}

/// A new, empty database on the test server; its `PgTarget`.
pub fn fresh_database() -> PgTarget {
    PgTarget::parse(&fresh_database_url()).expect("the test server's URL parses")
}

/// A new, empty database on the test server; its URL (for a server process's `--postgres`).
pub fn fresh_database_url() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "showfloor_test_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let server = server_url();
    psql(&server, &format!("CREATE DATABASE {name}")).unwrap_or_else(|e| panic!("{e}"));
    let mut url = url::Url::parse(&server).expect("the test server's URL parses");
    url.set_path(&name);
    url.to_string()
}

fn psql(url: &str, sql: &str) -> Result<String, String> {
    let out = Command::new("psql")
        .args([url, "-v", "ON_ERROR_STOP=1", "-qAtc", sql])
        .output()
        .map_err(|e| format!("psql: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "psql {sql:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Drops the scratch databases of test processes that have exited.
fn drop_stale_databases(url: &str) {
    let Ok(names) = psql(
        url,
        "SELECT datname FROM pg_database WHERE datname LIKE 'showfloor_test_%'",
    ) else {
        return;
    };
    for name in names.lines() {
        let pid = name.split('_').nth(2).and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists()) {
            let _ = psql(url, &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
    }
}

fn own_url() -> String {
    format!("postgres://postgres@127.0.0.1:{PORT}/postgres?sslmode=disable")
}

fn answers(url: &str) -> bool {
    psql(url, "SELECT 1").is_ok()
}

/// Starts (once per machine) a server on `PORT`, or finds it running.
fn start_own() -> Result<String, String> {
    let url = own_url();
    if answers(&url) {
        return Ok(url);
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-postgres");
    std::fs::create_dir_all(&root).map_err(|e| format!("{}: {e}", root.display()))?;
    let lock = std::fs::File::create(root.join("lock")).map_err(|e| e.to_string())?;
    lock.lock().map_err(|e| format!("lock: {e}"))?;
    if answers(&url) {
        return Ok(url);
    }
    let bin = server_bin_dir()?;
    let data = root.join("data");
    // PostgreSQL refuses to run as root: the server runs as the `postgres` user.
    let as_pg = |args: &[&str]| -> Result<(), String> {
        let out = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .args(args)
            .output()
            .map_err(|e| format!("runuser: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{args:?}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    };
    let chown = |path: &Path| {
        Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(path)
            .status()
            .map_err(|e| e.to_string())
    };
    if !data.join("PG_VERSION").exists() {
        let _ = std::fs::remove_dir_all(&data);
        std::fs::create_dir_all(&data).map_err(|e| e.to_string())?;
        chown(&data)?;
        let data_s = data.to_str().ok_or("non-UTF-8 path")?;
        as_pg(&[
            bin.join("initdb").to_str().ok_or("non-UTF-8 path")?,
            "-D",
            data_s,
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
        ])?;
    }
    chown(&root)?;
    let log = root.join("server.log");
    let options = format!(
        "-p {PORT} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} \
         -c max_connections=300 -c shared_buffers=128MB",
        data.display()
    );
    as_pg(&[
        bin.join("pg_ctl").to_str().ok_or("non-UTF-8 path")?,
        "-D",
        data.to_str().ok_or("non-UTF-8 path")?,
        "-l",
        log.to_str().ok_or("non-UTF-8 path")?,
        "-o",
        &options,
        "-w",
        "start",
    ])?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !answers(&url) {
        if Instant::now() > deadline {
            return Err(format!(
                "the server did not answer on port {PORT}; see {}",
                log.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(url)
}

/// Where `initdb` and `pg_ctl` are, installing Debian's `postgresql` if there is none.
fn server_bin_dir() -> Result<PathBuf, String> {
    let find = || -> Option<PathBuf> {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| Some(e.ok()?.path().join("bin")))
            .filter(|bin| bin.join("initdb").exists())
            .collect();
        dirs.sort();
        dirs.pop()
    };
    if let Some(dir) = find() {
        return Ok(dir);
    }
    let status = Command::new("sh")
        .args([
            "-c",
            "apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
             apt-get install -y -qq postgresql postgresql-client >/dev/null",
        ])
        .status()
        .map_err(|e| format!("apt-get: {e}"))?;
    if !status.success() {
        return Err("apt-get install postgresql failed".into());
    }
    find().ok_or_else(|| "postgresql is installed but initdb was not found".into())
}
