//! The deployment files under `deploy/` (issues 14 and 16), validated with real tools rather
//! than by eye: `yamllint` over every YAML file, `kubernetes-validate` (strict schemas) over
//! the cluster and single-node manifests, `hadolint` over the Dockerfile, `systemd-analyze
//! verify` and `security` over the unit, `promtool` over the alert rules (and their unit
//! tests), the Prometheus configuration and the dashboard's queries, and structural checks
//! (`tests/deploy/check_*.py`, the Dockerfile here). The dashboard's and the alerts' series
//! are checked against a scrape of the real server. The Python tools live in a venv built
//! once under cargo's target tmp dir from `tests/deploy/requirements.txt` (PyPI); promtool
//! comes from Debian's `prometheus` package, unpacked there too; `systemd-analyze` is
//! installed with apt-get if missing. If any of them cannot be had the tests fail, they
//! never skip. No Docker engine is needed or used.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// Under CARGO_TARGET_DIR, so `cargo clean` drops it and worktrees with their own target dir
/// do not share (or fight over) one venv.
const VENV: &str = concat!(env!("CARGO_TARGET_TMPDIR"), "/deploy-venv");
/// The oldest and newest Kubernetes versions the manifests must validate against.
const K8S_VERSIONS: [&str; 2] = ["1.30.0", "1.37.0"];

fn root() -> &'static Path {
    Path::new(ROOT)
}

/// A command of the venv's Python that leaves no `__pycache__` in the source tree.
fn py(python: &Path) -> Command {
    let mut cmd = Command::new(python);
    cmd.current_dir(root()).env("PYTHONDONTWRITEBYTECODE", "1");
    cmd
}

/// Runs `cmd`; returns whether it succeeded and a report of the command and its output.
fn run(cmd: &mut Command) -> (bool, String) {
    let shown = format!("{cmd:?}");
    match cmd.output() {
        Ok(out) => (
            out.status.success(),
            format!(
                "$ {shown}\n--- status: {}\n--- stdout\n{}\n--- stderr\n{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        ),
        Err(e) => (false, format!("$ {shown}\n--- could not start: {e}")),
    }
}

/// The venv's Python, building the venv first if it is missing or was built from other
/// requirements. Several test processes (and the tests of this file, which run in parallel)
/// may get here at once: an exclusive lock on a file next to the venv serialises them, and
/// the stamp is written last, so a half-built venv is never taken for a finished one.
fn venv_python() -> PathBuf {
    let venv = Path::new(VENV);
    let python = venv.join("bin/python");
    let requirements = root().join("tests/deploy/requirements.txt");
    let (ok, version) = run(Command::new("python3").arg("--version"));
    assert!(
        ok,
        "python3 is needed to build the validators' venv\n{version}"
    );
    let stamp_text = format!(
        "{}\n{version}",
        fs::read_to_string(&requirements).expect("tests/deploy/requirements.txt")
    );
    let stamp = venv.join("showfloor-stamp");

    fs::create_dir_all(venv.parent().expect("venv has a parent")).expect("target tmp dir");
    let lock = fs::File::create(format!("{VENV}.lock")).expect("venv lock file");
    lock.lock().expect("lock the venv");
    if fs::read_to_string(&stamp).ok().as_deref() == Some(stamp_text.as_str()) {
        return python;
    }
    if venv.exists() {
        fs::remove_dir_all(venv).expect("remove the outdated venv");
    }
    let (ok, log) = run(Command::new("python3").args(["-m", "venv"]).arg(venv));
    assert!(ok, "creating the venv failed\n{log}");
    let (ok, log) = run(Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "-q",
            "-r",
        ])
        .arg(&requirements));
    assert!(
        ok,
        "pip install -r tests/deploy/requirements.txt failed (PyPI must be reachable)\n{log}"
    );
    fs::write(&stamp, stamp_text).expect("write the venv stamp");
    python
}

/// Every problem in one message, each with the full output of the tool that found it.
fn assert_all_ok(what: &str, results: Vec<(bool, String)>) {
    let failures: Vec<&String> = results.iter().filter(|r| !r.0).map(|r| &r.1).collect();
    assert!(
        failures.is_empty(),
        "{what}: {} of {} checks failed\n\n{}",
        failures.len(),
        results.len(),
        failures
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n\n")
    );
    for (_, log) in &results {
        println!("{log}");
    }
}

/// The Kubernetes resources under `dir` (relative to the repository).
fn k8s_manifests(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(root().join(dir))
        .expect(dir)
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        // Not a Kubernetes resource (kustomize reads it); check_k8s*.py check it.
        .filter(|p| p.file_name().is_none_or(|n| n != "kustomization.yaml"))
        .collect();
    files.sort();
    files
}

/// `kubernetes-validate --strict` over the manifests of `dir` for every version we support.
fn validate_k8s(dir: &str, expected: usize) {
    let python = venv_python();
    let files = k8s_manifests(dir);
    assert!(
        files.len() >= expected,
        "expected {expected} manifests in {dir}, found {files:?}"
    );
    let results = K8S_VERSIONS
        .iter()
        .map(|version| {
            let (ok, log) = run(py(&python)
                .args(["-m", "kubernetes_validate", "--strict", "-k", version])
                .args(&files));
            // A kind it has no schema for is only a warning with exit 0: that would be a
            // manifest nobody validated, so it fails here.
            (ok && !log.contains("WARN"), log)
        })
        .collect();
    assert_all_ok(&format!("kubernetes-validate {dir}"), results);
}

#[test]
fn yamllint_passes_on_every_deploy_yaml_file() {
    let python = venv_python();
    let result =
        run(py(&python).args(["-m", "yamllint", "-s", "-c", "deploy/.yamllint", "deploy/"]));
    assert_all_ok("yamllint", vec![result]);
}

#[test]
fn kubernetes_manifests_validate_strictly() {
    validate_k8s("deploy/k8s", 7);
}

#[test]
fn kubernetes_manifests_are_consistent_with_each_other_and_the_server() {
    let python = venv_python();
    let result = run(py(&python).arg("tests/deploy/check_k8s.py").arg(root()));
    assert_all_ok("deploy/k8s structure", vec![result]);
}

#[test]
fn compose_file_describes_a_three_node_cluster() {
    let python = venv_python();
    let mut results = vec![run(py(&python)
        .arg("tests/deploy/check_compose.py")
        .arg(root()))];
    // `docker compose config` checks the file against compose's own schema and needs no
    // engine, only the compose plugin, which not every machine has; the structural checks
    // above run either way.
    if run(Command::new("docker").args(["compose", "version"])).0 {
        results.push(run(Command::new("docker")
            .current_dir(root())
            .env("SHOWFLOOR_API_KEYS", "test-key-0123456789abcdef")
            .args(["compose", "-f", "deploy/compose.yaml", "config", "-q"])));
    } else {
        eprintln!("note: no `docker compose` plugin here: compose's own schema check not run");
    }
    assert_all_ok("deploy/compose.yaml", results);
}

/// The name of the `[[bin]]` target in Cargo.toml.
fn bin_name() -> String {
    let manifest = fs::read_to_string(root().join("Cargo.toml")).expect("Cargo.toml");
    let section = manifest
        .split("[[bin]]")
        .nth(1)
        .expect("Cargo.toml declares a [[bin]]");
    section
        .lines()
        .find_map(|l| {
            let (key, value) = l.split_once('=')?;
            (key.trim() == "name").then(|| value.trim().trim_matches('"').to_string())
        })
        .expect("[[bin]] has a name")
}

#[test]
fn dockerfile_builds_and_runs_the_server_binary() {
    let text = fs::read_to_string(root().join("deploy/Dockerfile")).expect("deploy/Dockerfile");
    // Instructions with their continuation lines joined, comments dropped.
    let joined = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
        .replace("\\\n", " ");
    let instructions: Vec<(String, String)> = joined
        .lines()
        .filter_map(|l| {
            let (op, rest) = l.trim().split_once(char::is_whitespace)?;
            Some((op.to_ascii_uppercase(), rest.trim().to_string()))
        })
        .collect();
    let all = |op: &str| -> Vec<&str> {
        instructions
            .iter()
            .filter(|(o, _)| o == op)
            .map(|(_, r)| r.as_str())
            .collect()
    };
    let bin = bin_name();
    let mut problems = Vec::new();
    let from = all("FROM");
    if from.len() != 2
        || !from[0].starts_with("rust:1-bookworm")
        || from[1] != "debian:bookworm-slim"
    {
        problems.push(format!(
            "expected FROM rust:1-bookworm then FROM debian:bookworm-slim, got {from:?}"
        ));
    }
    let runs = all("RUN").join("\n");
    if !runs.contains("cargo build --release --locked") {
        problems.push("no `cargo build --release --locked`".to_string());
    }
    if !runs.contains(&format!("--bin {bin}")) || !runs.contains(&format!("target/release/{bin} "))
    {
        problems.push(format!(
            "the build does not build and install Cargo.toml's binary {bin:?}"
        ));
    }
    if !all("COPY")
        .iter()
        .any(|c| c.starts_with("--from=") && c.contains(&format!("/{bin} ")))
    {
        problems.push(format!(
            "the runtime stage does not copy {bin:?} from the build"
        ));
    }
    if all("ENTRYPOINT") != [format!("[\"{bin}\"]")] || all("CMD") != ["[\"serve\"]"] {
        problems.push(format!(
            "expected ENTRYPOINT [\"{bin}\"] and CMD [\"serve\"], got {:?} {:?}",
            all("ENTRYPOINT"),
            all("CMD")
        ));
    }
    let mut exposed: Vec<String> = all("EXPOSE")
        .iter()
        .flat_map(|e| e.split_whitespace())
        .map(|p| {
            if p.contains('/') {
                p.to_string()
            } else {
                format!("{p}/tcp")
            }
        })
        .collect();
    exposed.sort();
    if exposed != ["7880/tcp", "7881/tcp", "7882/udp"] {
        problems.push(format!(
            "EXPOSE should be 7880 7881 7882/udp, got {exposed:?}"
        ));
    }
    // Those are the server's defaults (src/config.rs), which is why the image sets none.
    let config = fs::read_to_string(root().join("src/config.rs")).expect("src/config.rs");
    for port in ["7880", "7881", "7882"] {
        if !config.contains(&format!("\"0.0.0.0:{port}\"")) {
            problems.push(format!("src/config.rs no longer defaults to port {port}"));
        }
    }
    let user = all("USER");
    if user
        .last()
        .is_none_or(|u| u.starts_with("root") || u.starts_with("0"))
    {
        problems.push(format!(
            "the image must run as a non-root USER, got {user:?}"
        ));
    }
    if all("VOLUME").is_empty() {
        problems.push("no VOLUME for the data dir".to_string());
    }
    // The health check probes /readyz with a program the runtime stage installs (the binary
    // has no probe command of its own).
    let last_from = instructions
        .iter()
        .rposition(|(op, _)| op == "FROM")
        .unwrap_or(0);
    let runtime_installs = instructions[last_from..]
        .iter()
        .filter(|(op, rest)| op == "RUN" && rest.contains("apt-get install"))
        .map(|(_, rest)| rest.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    match all("HEALTHCHECK").as_slice() {
        [check] if check.contains("/readyz") && check.contains(" CMD ") => {
            if check.contains("curl") && !runtime_installs.contains(" curl") {
                problems.push(
                    "the HEALTHCHECK runs curl, which the runtime stage does not install".into(),
                );
            }
        }
        other => problems.push(format!(
            "expected one HEALTHCHECK ... CMD probing /readyz, got {other:?}"
        )),
    }
    if !src_contains("\"/readyz\"") {
        problems.push("the server routes no /readyz for the HEALTHCHECK".into());
    }

    // The build context: what the build needs must not be ignored; target/ and .git must be.
    let ignore = fs::read_to_string(root().join(".dockerignore")).expect(".dockerignore");
    let patterns: Vec<&str> = ignore
        .lines()
        .map(|l| l.trim().trim_start_matches('/'))
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    for needed in ["target", ".git"] {
        if !patterns.contains(&needed) {
            problems.push(format!(".dockerignore does not exclude {needed}"));
        }
    }
    for kept in [
        "src",
        "proto",
        "web",
        "benches",
        "loadtest",
        "build.rs",
        "Cargo.toml",
        "Cargo.lock",
    ] {
        if patterns.contains(&kept) {
            problems.push(format!(
                ".dockerignore excludes {kept}, which the build needs"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "deploy/Dockerfile:\n{}\n--- Dockerfile\n{text}",
        problems.join("\n")
    );
}

/// Whether any file under src/ contains `needle`.
fn src_contains(needle: &str) -> bool {
    fn walk(dir: &Path, needle: &str) -> bool {
        fs::read_dir(dir).expect("src dir").any(|e| {
            let path = e.expect("dir entry").path();
            if path.is_dir() {
                walk(&path, needle)
            } else {
                path.extension().is_some_and(|x| x == "rs")
                    && fs::read_to_string(&path).is_ok_and(|s| s.contains(needle))
            }
        })
    }
    walk(&root().join("src"), needle)
}

#[test]
fn hadolint_passes_on_the_dockerfile() {
    let python = venv_python();
    let hadolint = python.with_file_name("hadolint");
    // No configuration: every rule at every level counts; the Dockerfile says in an inline
    // `# hadolint ignore=` why it departs from one.
    let result = run(Command::new(hadolint)
        .current_dir(root())
        .args(["--no-color", "deploy/Dockerfile"]));
    assert_all_ok("hadolint deploy/Dockerfile", vec![result]);
}

#[test]
fn single_node_kubernetes_manifests_validate_strictly() {
    validate_k8s("deploy/k8s-single", 6);
}

#[test]
fn single_node_kubernetes_manifests_are_consistent_with_each_other_and_the_server() {
    let python = venv_python();
    let result = run(py(&python)
        .arg("tests/deploy/check_k8s_single.py")
        .arg(root()));
    assert_all_ok("deploy/k8s-single structure", vec![result]);
}

#[test]
fn single_node_compose_file_runs_one_node_on_its_embedded_store() {
    let python = venv_python();
    let mut results = vec![run(py(&python)
        .arg("tests/deploy/check_compose_single.py")
        .arg(root()))];
    // As for compose.yaml: compose's own schema check where the plugin is installed.
    if run(Command::new("docker").args(["compose", "version"])).0 {
        results.push(run(Command::new("docker")
            .current_dir(root())
            .env("SHOWFLOOR_API_KEYS", "test-key-0123456789abcdef")
            .args([
                "compose",
                "-f",
                "deploy/compose.single.yaml",
                "config",
                "-q",
            ])));
    } else {
        eprintln!("note: no `docker compose` plugin here: compose's own schema check not run");
    }
    assert_all_ok("deploy/compose.single.yaml", results);
}

/// Runs `cmd` as root's package tools would; the report of a failure names the step.
fn must(step: &str, cmd: &mut Command) -> String {
    let (ok, log) = run(cmd);
    assert!(ok, "{step} failed\n{log}");
    log
}

/// `systemd-analyze`, installed with apt-get (Debian's `systemd` package) when missing.
fn systemd_analyze() -> &'static str {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        if run(Command::new("systemd-analyze").arg("--version")).0 {
            return;
        }
        must(
            "apt-get update",
            Command::new("apt-get").args(["update", "-q"]),
        );
        must(
            "apt-get install systemd (for systemd-analyze; needs root)",
            Command::new("apt-get")
                .env("DEBIAN_FRONTEND", "noninteractive")
                .args(["install", "-y", "-q", "--no-install-recommends", "systemd"]),
        );
    });
    "systemd-analyze"
}

#[test]
fn systemd_unit_verifies_and_is_hardened() {
    let analyze = systemd_analyze();
    // `verify` checks that ExecStart's binary exists: a copy of the unit runs this build's.
    let unit = fs::read_to_string(root().join("deploy/systemd/showfloor.service"))
        .expect("deploy/systemd/showfloor.service");
    let installed = "ExecStart=/usr/local/bin/showfloor ";
    assert_eq!(
        unit.matches(installed).count(),
        1,
        "the unit should start {installed:?} once"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let copy = dir.path().join("showfloor.service");
    let bin = env!("CARGO_BIN_EXE_showfloor");
    fs::write(&copy, unit.replace(installed, &format!("ExecStart={bin} ")))
        .expect("write the unit's copy");

    // An unknown or misspelt option is only a warning with exit 0: any output fails.
    let verify = match Command::new(analyze).arg("verify").arg(&copy).output() {
        Ok(out) => (
            out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
            format!(
                "$ {analyze} verify {}\n--- status: {}\n--- output (must be empty)\n{}{}",
                copy.display(),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        ),
        Err(e) => (false, format!("{analyze} verify could not start: {e}")),
    };
    // The exposure score (0 safest, 10 unsafe) must stay at most 2.0; it is 1.3 ("OK") as
    // written, so a noticeably weakened sandbox fails here.
    let security = run(Command::new(analyze)
        .args(["security", "--offline=true", "--threshold=20", "--no-pager"])
        .arg(&copy));
    let python = venv_python();
    let structure = run(py(&python).arg("tests/deploy/check_systemd.py").arg(root()));
    assert_all_ok(
        "deploy/systemd/showfloor.service",
        vec![verify, security, structure],
    );
}

/// `promtool` from PATH, else from Debian's `prometheus` package unpacked (not installed:
/// no service is set up) under the target tmp dir, once.
fn promtool() -> PathBuf {
    if run(Command::new("promtool").arg("--version")).0 {
        return PathBuf::from("promtool");
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("promtool");
    let promtool = dir.join("usr/bin/promtool");
    fs::create_dir_all(&dir).expect("promtool dir");
    let lock = fs::File::create(dir.with_extension("lock")).expect("promtool lock file");
    lock.lock().expect("lock the promtool dir");
    if run(Command::new(&promtool).arg("--version")).0 {
        return promtool;
    }
    let download = dir.join("download");
    let _ = fs::remove_dir_all(&download);
    fs::create_dir_all(&download).expect("download dir");
    let get = || {
        run(Command::new("apt-get")
            .current_dir(&download)
            .args(["download", "-q", "prometheus"]))
    };
    if !get().0 {
        // A fresh machine may have no package lists yet.
        must(
            "apt-get update",
            Command::new("apt-get").args(["update", "-q"]),
        );
        let (ok, log) = get();
        assert!(
            ok,
            "apt-get download prometheus failed (for promtool)\n{log}"
        );
    }
    let deb = fs::read_dir(&download)
        .expect("download dir")
        .map(|e| e.expect("dir entry").path())
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .expect("apt-get download left a .deb");
    must(
        "dpkg-deb -x prometheus",
        Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&dir),
    );
    must(
        "promtool --version",
        Command::new(&promtool).arg("--version"),
    );
    promtool
}

#[test]
fn prometheus_rules_config_and_dashboard_queries_pass_promtool() {
    let promtool = promtool();
    let prometheus = root().join("deploy/prometheus");
    let tool = |args: &[&str]| {
        let mut cmd = Command::new(&promtool);
        cmd.current_dir(&prometheus).args(args);
        cmd
    };
    // The dashboard's queries, as recording rules, so that Prometheus's parser reads them.
    let dir = tempfile::tempdir().expect("tempdir");
    let queries = dir.path().join("dashboard-queries.yaml");
    let python = venv_python();
    let written = run(py(&python)
        .args(["tests/deploy/check_monitoring.py", "--dashboard-rules"])
        .arg(root())
        .arg(&queries));
    let mut results = vec![
        run(&mut tool(&["check", "rules", "alerts.yaml"])),
        run(&mut tool(&["test", "rules", "alerts.test.yaml"])),
        run(&mut tool(&["check", "config", "prometheus.yml"])),
    ];
    results.push(if written.0 {
        run(Command::new(&promtool)
            .args(["check", "rules"])
            .arg(&queries))
    } else {
        written
    });
    assert_all_ok("promtool", results);
}

/// Sets a webhook on `room` (open registration) to a receiver on loopback, registers someone
/// and waits until the server has counted the delivery in `showfloor_webhook_attempts_total`.
async fn deliver_one_webhook(served: &common::Served, control: &mut common::Control, room: &str) {
    use showfloor::pb;
    let hook = common::receiver::Receiver::start().await;
    control
        .client
        .set_registration(common::authed(pb::SetRegistrationRequest {
            room_id: room.into(),
            mode: pb::RegistrationMode::Open as i32,
            phone_country: Some("CN".into()),
        }))
        .await
        .expect("open registration");
    control
        .client
        .set_webhook(common::authed(pb::SetWebhookRequest {
            room_id: room.into(),
            url: hook.url(),
            ..Default::default()
        }))
        .await
        .expect("set the webhook");
    let posted = common::rtc_client::http(
        served.http_addr().parse().expect("an address"),
        "POST",
        &format!("/api/rooms/{room}/registrations"),
        &[("content-type", "application/json")],
        r#"{"name":"Ms Chen","company":"Chen Trading","phone":"138 0013 8000"}"#,
    )
    .await;
    assert_eq!(posted.status, 201, "registration: {}", posted.body);
    for _ in 0..300 {
        if http_get(served.http, "/metrics")
            .await
            .contains("showfloor_webhook_attempts_total{")
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!(
        "no webhook attempt was counted within 30 s; the receiver got {}",
        hook.got().len()
    );
}

/// GET `path` from a server on a loopback port: the body of a 200 answer. HTTP/1.0, so the
/// body is neither chunked nor kept alive: it ends where the connection does.
async fn http_get(port: u16, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect to the server");
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .expect("send the request");
    let mut out = String::new();
    s.read_to_string(&mut out).await.expect("read the answer");
    let (head, body) = out.split_once("\r\n\r\n").expect("an HTTP answer");
    assert!(
        head.lines().next().is_some_and(|l| l.contains(" 200 ")),
        "GET {path}: {head}"
    );
    body.to_string()
}

#[tokio::test]
async fn dashboard_and_alerts_query_only_metrics_the_server_exports() {
    let data = tempfile::tempdir().expect("tempdir");
    let served = common::Served::start([
        "--api-key",
        common::KEY,
        "--data-dir",
        data.path().to_str().expect("utf-8 path"),
        // The webhook below points at a receiver on loopback.
        "--webhook-allow-private",
        "true",
    ])
    .await;
    // The labelled families (gRPC calls by method and code, closes by code, webhook attempts
    // by outcome) show up only once they have a sample: one control-plane call, one refused
    // viewer and one webhook delivery give them one.
    let mut control = common::Control::at(served.grpc).await;
    let room = control
        .create_room("metrics")
        .await
        .room
        .expect("a room")
        .id;
    let mut refused = common::connect(&served.http_addr(), &room, "not-a-token").await;
    let (code, _) = refused.closed().await;
    assert_eq!(code, 4001, "a bad token is refused with 4001");
    deliver_one_webhook(&served, &mut control, &room).await;

    let scrape = http_get(served.http, "/metrics").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let metrics = dir.path().join("metrics.txt");
    fs::write(&metrics, &scrape).expect("save the scrape");
    let python = venv_python();
    let result = run(py(&python)
        .arg("tests/deploy/check_monitoring.py")
        .arg(root())
        .arg(&metrics));
    assert_all_ok("dashboard and alerts against /metrics", vec![result]);
}
