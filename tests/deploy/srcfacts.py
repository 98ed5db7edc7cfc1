"""Facts about the server read from its source, shared by check_compose.py and check_k8s.py:
the deploy files may only use settings and HTTP paths the server really has."""

import pathlib
import re

# Flag spelling of the settings the checks look at (for `command:`/`args:` instead of env).
FLAGS = {
    "--nats": "SHOWFLOOR_NATS",
    "--postgres": "SHOWFLOOR_POSTGRES",
    "--node-id": "SHOWFLOOR_NODE_ID",
    "--advertise": "SHOWFLOOR_ADVERTISE",
    "--api-key": "SHOWFLOOR_API_KEYS",
    "--media-udp-addr": "SHOWFLOOR_MEDIA_UDP_ADDR",
    "--http-addr": "SHOWFLOOR_HTTP_ADDR",
    "--grpc-addr": "SHOWFLOOR_GRPC_ADDR",
}

NODE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def _sources(root):
    return [p.read_text() for p in sorted(pathlib.Path(root, "src").rglob("*.rs"))]


def env_names(root):
    """Every `SHOWFLOOR_*` string literal in src/ (clap `env = ...` and direct reads)."""
    names = set()
    for text in _sources(root):
        names.update(re.findall(r'"(SHOWFLOOR_[A-Z0-9_]+)"', text))
    return names


def routes(root):
    """Every path the server routes (`.route("/x", ...)`), as written."""
    paths = set()
    for text in _sources(root):
        paths.update(re.findall(r'\.route(?:_service)?\(\s*"(/[^"]*)"', text))
    return paths


def flags_to_env(args):
    """`--nats URL` / `--nats=URL` in a command line, as {env name: value}."""
    out = {}
    args = list(args)
    for i, a in enumerate(args):
        name, eq, val = a.partition("=")
        if name in FLAGS:
            if not eq:
                val = args[i + 1] if i + 1 < len(args) else ""
            out[FLAGS[name]] = val
    return out


def port_of(addr, default):
    """The port of `HOST:PORT` (IPv6 in brackets allowed); `default` when unset."""
    if not addr:
        return default
    m = re.search(r":(\d+)$", addr)
    return int(m.group(1)) if m else None


def flag_default(root, env_name):
    """The `[default: X]` of the flag that reads `env_name`, from its doc comment in
    src/config.rs (digits only, `_` and `,` removed), or None."""
    text = pathlib.Path(root, "src", "config.rs").read_text()
    m = re.search(r'((?:\s*///[^\n]*\n)+)\s*#\[arg\([^)]*env = "' + re.escape(env_name) + '"',
                  text)
    if not m:
        return None
    d = re.search(r"\[default: ([^\]]+)\]", " ".join(m.group(1).split()))
    if not d:
        return None
    value = d.group(1).replace("_", "").replace(",", "")
    return int(value) if value.isdigit() else value
