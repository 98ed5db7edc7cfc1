//! The deployment files under `deploy/` (issue 14), validated with real tools rather than by
//! eye: `yamllint` over every YAML file, `kubernetes-validate` (strict schemas) over every
//! Kubernetes manifest, and structural checks of compose.yaml and the manifests
//! (`tests/deploy/check_*.py`) plus the Dockerfile (here). The Python tools live in a venv
//! built once under cargo's target tmp dir from `tests/deploy/requirements.txt` (PyPI); if
//! it cannot be built the tests fail, they never skip. No Docker engine is needed or used.

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

fn k8s_manifests() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(root().join("deploy/k8s"))
        .expect("deploy/k8s")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        // Not a Kubernetes resource (kustomize reads it); check_k8s.py checks it.
        .filter(|p| p.file_name().is_none_or(|n| n != "kustomization.yaml"))
        .collect();
    files.sort();
    files
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
    let python = venv_python();
    let files = k8s_manifests();
    assert!(
        files.len() >= 7,
        "expected the seven manifests, found {files:?}"
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
    assert_all_ok("kubernetes-validate", results);
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
