"""Structural checks of deploy/compose.single.yaml: one Showfloor node on its embedded store
(no NATS, no PostgreSQL), on the host's network so that its ICE candidates are reachable, with
its keys from the environment, a volume at the data directory, an open-file limit sized for
the connection limit and a locked-down container. The health check is the image's (the
Dockerfile test checks it probes /readyz).
Run by tests/deploy_files.rs with the venv's Python:
    python tests/deploy/check_compose_single.py REPO_ROOT
Prints one line per problem and exits 1, or prints a summary and exits 0."""

import pathlib
import re
import sys

import yaml

import srcfacts
from check_compose import command, environment, interpolate

errors = []


def err(msg):
    errors.append(msg)


def main(root):
    doc = yaml.safe_load(pathlib.Path(root, "deploy", "compose.single.yaml").read_text())
    services = doc.get("services") or {}
    known_env = srcfacts.env_names(root)
    if len(services) != 1:
        err(f"expected exactly one service (no NATS, no PostgreSQL), found {sorted(services)}")
    name, svc = next(iter(services.items()))

    if (svc.get("build") or {}).get("dockerfile") != "deploy/Dockerfile":
        err(f"{name}: does not build deploy/Dockerfile")
    if not svc.get("restart"):
        err(f"{name}: no restart policy")
    env = environment(svc)
    settings = {k: interpolate(v) for k, v in env.items()}
    settings.update({k: interpolate(v) for k, v in srcfacts.flags_to_env(command(svc)).items()})
    for key in env:
        if key.startswith("SHOWFLOOR_") and key not in known_env:
            err(f"{name}: {key} is not a setting the server reads (not in src/)")
    for key in ("SHOWFLOOR_NATS", "SHOWFLOOR_POSTGRES", "SHOWFLOOR_NODE_ID",
                "SHOWFLOOR_ADVERTISE", "SHOWFLOOR_STORE"):
        if key in settings:
            err(f"{name}: {key} is a cluster setting; a single node uses the embedded store")
    keys = env.get("SHOWFLOOR_API_KEYS", "")
    if not re.fullmatch(r"\$\{SHOWFLOOR_API_KEYS:\?[^}]*\}", keys.strip()):
        err(f"{name}: SHOWFLOOR_API_KEYS must be required from the environment "
            f"(${{SHOWFLOOR_API_KEYS:?...}}), got {keys!r}")
    if "--dev" in command(svc) or "SHOWFLOOR_DEV" in settings:
        err(f"{name}: --dev generates a throw-away key; not for a deployment")

    # Host networking: the ports are the host's; nothing is published (compose would refuse).
    if svc.get("network_mode") != "host":
        err(f"{name}: network_mode is {svc.get('network_mode')!r}, not host: the ICE candidates "
            "would name the container's private address")
    if svc.get("ports"):
        err(f"{name}: ports are published, which host networking does not take")
    media = srcfacts.port_of(settings.get("SHOWFLOOR_MEDIA_UDP_ADDR"), 7882)
    if media != 7882:
        err(f"{name}: media UDP port {media} is not the image's EXPOSEd 7882")

    # The store on a named volume at the image's data directory.
    data_dir = settings.get("SHOWFLOOR_DATA_DIR", "/var/lib/showfloor")
    mounts = {}
    for v in svc.get("volumes") or []:
        source, _, target = str(v).partition(":")
        mounts[target.split(":")[0]] = source
    declared = set((doc.get("volumes") or {}).keys())
    if mounts.get(data_dir) not in declared:
        err(f"{name}: the data directory {data_dir} is not on a declared named volume "
            f"(mounts {mounts}, volumes {sorted(declared)})")

    # One descriptor per viewer WebSocket, one more per browser's keep-alive HTTP connection.
    max_conn = int(settings.get("SHOWFLOOR_MAX_CONNECTIONS")
                   or srcfacts.flag_default(root, "SHOWFLOOR_MAX_CONNECTIONS"))
    nofile = ((svc.get("ulimits") or {}).get("nofile") or {})
    if isinstance(nofile, int):
        nofile = {"soft": nofile, "hard": nofile}
    if int(nofile.get("soft", 0)) < 2 * max_conn + 1024:
        err(f"{name}: ulimits nofile soft {nofile.get('soft')} < 2 x max_connections "
            f"({max_conn}) + 1024")

    if svc.get("read_only") is not True:
        err(f"{name}: the root file system is not read_only")
    if "ALL" not in (svc.get("cap_drop") or []):
        err(f"{name}: cap_drop does not drop ALL")
    if not any(str(o).startswith("no-new-privileges") for o in svc.get("security_opt") or []):
        err(f"{name}: security_opt lacks no-new-privileges")
    grace = int(settings.get("SHOWFLOOR_SHUTDOWN_GRACE_SECS")
                or srcfacts.flag_default(root, "SHOWFLOOR_SHUTDOWN_GRACE_SECS"))
    stop = str(svc.get("stop_grace_period", "10s"))
    m = re.fullmatch(r"(\d+)s", stop)
    if not m or int(m.group(1)) <= grace:
        err(f"{name}: stop_grace_period {stop} does not exceed the server's drain ({grace} s)")
    if svc.get("healthcheck", {}).get("disable"):
        err(f"{name}: the image's health check is disabled")

    if errors:
        for e in errors:
            print(f"compose.single.yaml: {e}")
        return 1
    print(f"compose.single.yaml: ok (one node {name!r}, host network, store on "
          f"{mounts.get(data_dir)!r}, nofile {nofile.get('soft')} for {max_conn} connections)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
