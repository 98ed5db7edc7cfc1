"""What `systemd-analyze verify` does not judge in deploy/systemd/showfloor.service: that it
runs `showfloor serve` unprivileged (DynamicUser or a dedicated user) with the hardening an
operator expects, keeps its store in its StateDirectory, takes its keys from a root-only
EnvironmentFile, restarts on failure but not on a bad configuration (exit 64), stops after the
server's drain, and has an open-file limit sized for the connection limit. Also checks
showfloor.env.example: only settings the server reads, and a key placeholder it refuses.
Run by tests/deploy_files.rs with the venv's Python:
    python tests/deploy/check_systemd.py REPO_ROOT
Prints one line per problem and exits 1, or prints a summary and exits 0."""

import pathlib
import re
import shlex
import sys

import srcfacts

errors = []


def err(msg):
    errors.append(msg)


def parse_unit(text):
    """{section: {key: [values in order]}}; continuation lines joined, comments dropped."""
    sections, current = {}, None
    for line in text.replace("\\\n", " ").splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def seconds(value):
    m = re.fullmatch(r"(\d+)\s*(s|sec|min)?", value)
    if not m:
        return None
    return int(m.group(1)) * (60 if m.group(2) == "min" else 1)


def main(root):
    here = pathlib.Path(root, "deploy", "systemd")
    unit = parse_unit((here / "showfloor.service").read_text())
    svc = unit.get("Service", {})
    one = lambda key: (svc.get(key) or [None])[-1]  # noqa: E731 (the last one wins)
    known_env = srcfacts.env_names(root)

    argv = shlex.split(one("ExecStart") or "")
    if not argv or pathlib.PurePath(argv[0]).name != "showfloor" or argv[1:2] != ["serve"]:
        err(f"ExecStart does not run `showfloor serve`: {argv}")
    if "--dev" in argv:
        err("ExecStart passes --dev (a throw-away key)")

    if one("DynamicUser") != "yes" and one("User") in (None, "root", "0"):
        err("runs as root: set DynamicUser=yes or a dedicated User=")
    expected = {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "ProtectKernelTunables": "yes",
        "ProtectKernelModules": "yes",
        "ProtectControlGroups": "yes",
        "RestrictSUIDSGID": "yes",
        "LockPersonality": "yes",
        "Restart": "on-failure",
    }
    for key, value in expected.items():
        if one(key) != value:
            err(f"{key}={one(key)!r}, expected {value}")
    # Every port the server listens on by default is above 1024: no capability is needed.
    for setting in ("SHOWFLOOR_HTTP_ADDR", "SHOWFLOOR_GRPC_ADDR", "SHOWFLOOR_MEDIA_UDP_ADDR"):
        port = srcfacts.port_of(str(srcfacts.flag_default(root, setting)), None)
        if port is None or port <= 1024:
            err(f"the default {setting} port {port} needs CAP_NET_BIND_SERVICE")
    for key in ("CapabilityBoundingSet", "AmbientCapabilities"):
        if svc.get(key) != [""]:
            err(f"{key} should be set once and empty, got {svc.get(key)}")
    families = set(" ".join(svc.get("RestrictAddressFamilies") or []).split())
    if not {"AF_INET", "AF_INET6"} <= families or families - {
            "AF_INET", "AF_INET6", "AF_UNIX", "AF_NETLINK"}:
        err(f"RestrictAddressFamilies {sorted(families)}: needs AF_INET and AF_INET6, "
            "at most AF_UNIX and AF_NETLINK besides")
    if not svc.get("SystemCallFilter"):
        err("no SystemCallFilter")

    # Exit 64 (EX_USAGE, src/config.rs EXIT_CONFIG) is a bad configuration: not retried.
    config = pathlib.Path(root, "src", "config.rs").read_text()
    exit_config = re.search(r"pub const EXIT_CONFIG: u8 = (\d+);", config)
    prevented = " ".join(svc.get("RestartPreventExitStatus") or []).split()
    if not exit_config or exit_config.group(1) not in prevented:
        err(f"RestartPreventExitStatus {prevented} lacks the server's configuration exit code "
            f"({exit_config and exit_config.group(1)})")

    # The store in the StateDirectory.
    env = {}
    for e in svc.get("Environment") or []:
        for item in shlex.split(e):
            k, _, v = item.partition("=")
            env[k] = v
    state = (one("StateDirectory") or "").split()
    if not state or env.get("SHOWFLOOR_DATA_DIR") != f"%S/{state[0]}":
        err(f"SHOWFLOOR_DATA_DIR={env.get('SHOWFLOOR_DATA_DIR')!r} is not the StateDirectory "
            f"(%S/{state[0] if state else '?'})")
    if one("StateDirectoryMode") not in ("0700", "0750"):
        err(f"StateDirectoryMode={one('StateDirectoryMode')!r}: the store is private")
    for key in env:
        if key.startswith("SHOWFLOOR_") and key not in known_env:
            err(f"Environment {key} is not a setting the server reads")

    # Secrets from a file outside the unit, which must exist (no `-` prefix).
    files = svc.get("EnvironmentFile") or []
    if len(files) != 1 or files[0].startswith("-") or not files[0].startswith("/etc/"):
        err(f"EnvironmentFile {files}: expected one required file under /etc")

    # Open files: one per viewer WebSocket plus one keep-alive HTTP connection per browser.
    max_conn = int(env.get("SHOWFLOOR_MAX_CONNECTIONS")
                   or srcfacts.flag_default(root, "SHOWFLOOR_MAX_CONNECTIONS"))
    nofile = one("LimitNOFILE") or "0"
    soft = int(nofile.split(":")[0]) if nofile.split(":")[0].isdigit() else 0
    if soft < 2 * max_conn + 1024:
        err(f"LimitNOFILE={nofile} < 2 x max_connections ({max_conn}) + 1024")

    grace = int(srcfacts.flag_default(root, "SHOWFLOOR_SHUTDOWN_GRACE_SECS"))
    stop = seconds(one("TimeoutStopSec") or "")
    if stop is None or stop <= grace:
        err(f"TimeoutStopSec={one('TimeoutStopSec')!r} must exceed the drain ({grace} s)")
    if "multi-user.target" not in " ".join(unit.get("Install", {}).get("WantedBy") or []):
        err("not WantedBy=multi-user.target")

    # The environment file's template.
    example = (here / "showfloor.env.example").read_text()
    values = {}
    for line in example.splitlines():
        line = line.strip().lstrip("#").strip()
        m = re.fullmatch(r"(SHOWFLOOR_[A-Z0-9_]+)=(.*)", line)
        if m:
            values[m.group(1)] = m.group(2)
    for key in values:
        if key not in known_env:
            err(f"showfloor.env.example: {key} is not a setting the server reads")
    keys = values.get("SHOWFLOOR_API_KEYS", "")
    if "REPLACE" not in keys or any(len(k) >= 16 for k in keys.split(",")):
        err("showfloor.env.example: SHOWFLOOR_API_KEYS must be a REPLACE_ME placeholder the "
            "server refuses (< 16 characters)")
    if "0600" not in example:
        err("showfloor.env.example does not say to keep the file mode 0600")

    if errors:
        for e in errors:
            print(f"showfloor.service: {e}")
        return 1
    print(f"showfloor.service: ok (runs `{' '.join(argv)}`, store in %S/{state[0]}, "
          f"LimitNOFILE={nofile} for {max_conn} connections)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
