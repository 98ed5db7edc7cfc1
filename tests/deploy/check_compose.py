"""Structural checks of deploy/compose.yaml that `docker compose config` would not make:
three Showfloor nodes wired to NATS (JetStream) and PostgreSQL, distinct node ids and host
ports, each node's UDP media port published 1:1, start order by healthchecks.
Run by tests/deploy_files.rs with the venv's Python (PyYAML comes with yamllint):
    python tests/deploy/check_compose.py REPO_ROOT
Prints one line per problem and exits 1, or prints a summary and exits 0."""

import re
import shlex
import sys
import pathlib

import yaml

import srcfacts

errors = []


def err(msg):
    errors.append(msg)


def interpolate(value):
    """Compose's `${VAR:-default}` gives the default; `${VAR}` and `${VAR:?msg}` a marker."""
    if not isinstance(value, str):
        return value

    def one(m):
        body = m.group(1)
        for sep in (":-", "-"):
            if sep in body:
                return body.split(sep, 1)[1]
        return "<" + re.split(r"[:?]", body, 1)[0] + ">"

    return re.sub(r"\$\{([^}]*)\}", one, value)


def environment(svc):
    env = svc.get("environment") or {}
    if isinstance(env, list):
        env = dict(e.split("=", 1) if "=" in e else (e, "") for e in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def command(svc):
    cmd = svc.get("command") or []
    return shlex.split(cmd) if isinstance(cmd, str) else [str(c) for c in cmd]


def ports(svc):
    """(host port, container port, protocol) for each published port."""
    out = []
    for p in svc.get("ports") or []:
        if isinstance(p, dict):
            out.append((int(p.get("published", 0)), int(p["target"]), p.get("protocol", "tcp")))
            continue
        spec, _, proto = str(p).partition("/")
        parts = spec.split(":")
        if len(parts) < 2:
            err(f"port {p!r} is not published on a fixed host port")
            continue
        out.append((int(parts[-2]), int(parts[-1]), proto or "tcp"))
    return out


def healthcheck_text(svc):
    test = (svc.get("healthcheck") or {}).get("test") or []
    return test if isinstance(test, str) else " ".join(str(t) for t in test)


def url_host(url):
    m = re.match(r"^[a-z]+://(?:[^@/]*@)?([^:/]+)", url)
    return m.group(1) if m else None


def main(root):
    path = pathlib.Path(root, "deploy", "compose.yaml")
    doc = yaml.safe_load(path.read_text())
    services = doc.get("services") or {}
    known_env = srcfacts.env_names(root)
    routes = srcfacts.routes(root)
    declared_volumes = set((doc.get("volumes") or {}).keys())

    nodes = {
        name: svc
        for name, svc in services.items()
        if str(svc.get("image", "")).startswith("showfloor")
        or str((svc.get("build") or {}).get("dockerfile", "")).endswith("deploy/Dockerfile")
    }
    if len(nodes) != 3:
        err(f"expected 3 showfloor services, found {sorted(nodes)}")

    node_ids = {}
    published = {}
    for name, svc in services.items():
        for host, _, proto in ports(svc):
            published.setdefault((host, proto), []).append(name)
        if not svc.get("restart"):
            err(f"{name}: no restart policy")
        for v in svc.get("volumes") or []:
            source = v.get("source") if isinstance(v, dict) else str(v).split(":")[0]
            if source and not source.startswith((".", "/")) and source not in declared_volumes:
                err(f"{name}: volume {source!r} is not declared under top-level volumes")
    for (host, proto), users in sorted(published.items()):
        if len(users) > 1:
            err(f"host port {host}/{proto} published by several services: {users}")

    for name, svc in sorted(nodes.items()):
        env = environment(svc)
        settings = {k: interpolate(v) for k, v in env.items()}
        settings.update({k: interpolate(v) for k, v in srcfacts.flags_to_env(command(svc)).items()})
        for key in env:
            if key.startswith("SHOWFLOOR_") and key not in known_env:
                err(f"{name}: {key} is not a setting the server reads (not in src/)")
        for key in ("SHOWFLOOR_NATS", "SHOWFLOOR_POSTGRES", "SHOWFLOOR_NODE_ID",
                    "SHOWFLOOR_API_KEYS", "SHOWFLOOR_ADVERTISE"):
            if not settings.get(key):
                err(f"{name}: {key} (or its flag) is not set")
        nats, pg = settings.get("SHOWFLOOR_NATS", ""), settings.get("SHOWFLOOR_POSTGRES", "")
        if not nats.startswith("nats://") or url_host(nats) not in services:
            err(f"{name}: SHOWFLOOR_NATS {nats!r} is not nats://<a service of this file>")
        if not pg.startswith("postgres://") or url_host(pg) not in services:
            err(f"{name}: SHOWFLOOR_POSTGRES {pg!r} is not postgres://<a service of this file>")
        keys = env.get("SHOWFLOOR_API_KEYS", "")
        if keys and not re.fullmatch(r"\$\{[^}]*\}", keys.strip()):
            err(f"{name}: SHOWFLOOR_API_KEYS must come from the environment, not the file")
        node_id = settings.get("SHOWFLOOR_NODE_ID", "")
        if node_id and not srcfacts.NODE_ID.match(node_id):
            err(f"{name}: node id {node_id!r} is not valid for the server")
        node_ids.setdefault(node_id, []).append(name)

        mapped = ports(svc)
        media = srcfacts.port_of(settings.get("SHOWFLOOR_MEDIA_UDP_ADDR"), 7882)
        udp = [(h, c) for h, c, proto in mapped if proto == "udp"]
        if (media, media) not in udp:
            err(f"{name}: media UDP port {media} is not published 1:1 (udp mappings: {udp})")
        for setting, default in (("SHOWFLOOR_HTTP_ADDR", 7880), ("SHOWFLOOR_GRPC_ADDR", 7881)):
            port = srcfacts.port_of(settings.get(setting), default)
            if not any(c == port and proto == "tcp" for _, c, proto in mapped):
                err(f"{name}: container port {port}/tcp ({setting}) is not published")

        check = healthcheck_text(svc)
        if "/readyz" not in check:
            err(f"{name}: healthcheck does not probe /readyz: {check!r}")
        depends = svc.get("depends_on") or {}
        for dep in ("nats", "postgres"):
            cond = depends.get(dep, {}).get("condition") if isinstance(depends, dict) else None
            if cond != "service_healthy":
                err(f"{name}: depends_on {dep} is not `condition: service_healthy`")
            elif not (services.get(dep) or {}).get("healthcheck"):
                err(f"{name}: waits for {dep} to be healthy but {dep} has no healthcheck")

    if "/readyz" not in routes:
        err(f"the server routes no /readyz (routes in src/: {sorted(routes)})")
    for node_id, users in node_ids.items():
        if len(users) > 1:
            err(f"node id {node_id!r} used by several services: {users}")

    nats = services.get("nats") or {}
    if not str(nats.get("image", "")).startswith("nats:2.10"):
        err(f"nats: image {nats.get('image')!r} is not nats:2.10")
    nats_cmd = command(nats)
    if "-js" not in nats_cmd and "--jetstream" not in nats_cmd:
        err(f"nats: JetStream is not enabled (-js), command {nats_cmd}")
    store_dir = None
    for flag in ("-sd", "--store_dir"):
        if flag in nats_cmd and nats_cmd.index(flag) + 1 < len(nats_cmd):
            store_dir = nats_cmd[nats_cmd.index(flag) + 1]
    mounts = [str(v).split(":")[1] for v in nats.get("volumes") or [] if ":" in str(v)]
    if store_dir is None or store_dir not in mounts:
        err(f"nats: JetStream store dir {store_dir!r} is not on a volume (mounts {mounts})")

    pg = services.get("postgres") or {}
    if pg.get("image") != "postgres:15":
        err(f"postgres: image {pg.get('image')!r} is not postgres:15")
    if "pg_isready" not in healthcheck_text(pg):
        err("postgres: healthcheck does not use pg_isready")
    pg_mounts = [str(v).split(":")[1] for v in pg.get("volumes") or [] if ":" in str(v)]
    if "/var/lib/postgresql/data" not in pg_mounts:
        err(f"postgres: /var/lib/postgresql/data is not on a volume (mounts {pg_mounts})")

    if errors:
        for e in errors:
            print(f"compose.yaml: {e}")
        return 1
    print(f"compose.yaml: ok ({len(nodes)} nodes {sorted(node_ids)}, "
          f"{len(published)} published ports, nats + postgres healthy before nodes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
