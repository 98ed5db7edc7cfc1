"""Cross-resource checks of deploy/k8s that schema validation (kubernetes-validate) cannot
make: kustomization.yaml lists every manifest; selectors, Service ports, ConfigMap and Secret
references line up; the node id comes from the pod name; the UDP media port is the same on
host, container and in the server's setting; probe paths exist in the server; the Secret
holds only a placeholder the server would refuse.
Run by tests/deploy_files.rs with the venv's Python:
    python tests/deploy/check_k8s.py REPO_ROOT
Prints one line per problem and exits 1, or prints a summary and exits 0."""

import pathlib
import sys


import srcfacts
from kustomized import load, selects

errors = []


def err(msg):
    errors.append(msg)


def main(root):
    k8s = pathlib.Path(root, "deploy", "k8s")
    known_env = srcfacts.env_names(root)
    routes = srcfacts.routes(root)

    objs, kust = load(k8s, err)
    sets = objs.get("StatefulSet", {})
    if len(sets) != 1:
        err(f"expected one StatefulSet, found {sorted(sets)}")
        return report()
    sts = next(iter(sets.values()))
    spec, pod = sts["spec"], sts["spec"]["template"]["spec"]
    labels = sts["spec"]["template"]["metadata"].get("labels", {})
    if not selects(spec["selector"].get("matchLabels"), labels):
        err("StatefulSet selector does not match its pod labels")
    containers = pod["containers"]
    if len(containers) != 1:
        err(f"expected one container, found {len(containers)}")
    c = containers[0]

    configmaps, secrets = objs.get("ConfigMap", {}), objs.get("Secret", {})
    settings = {}
    for ref in c.get("envFrom") or []:
        if "configMapRef" in ref:
            cm = configmaps.get(ref["configMapRef"]["name"])
            if cm is None:
                err(f"envFrom names ConfigMap {ref['configMapRef']['name']!r}, not in deploy/k8s")
            else:
                settings.update(cm.get("data") or {})
        if "secretRef" in ref:
            sec = secrets.get(ref["secretRef"]["name"])
            if sec is None:
                err(f"envFrom names Secret {ref['secretRef']['name']!r}, not in deploy/k8s")
            else:
                settings.update(sec.get("stringData") or {})
    env = {e["name"]: e for e in c.get("env") or []}
    settings.update({k: e.get("value", "<from " + str(e.get("valueFrom")) + ">")
                     for k, e in env.items()})
    settings.update(srcfacts.flags_to_env([str(a) for a in c.get("args") or []]))
    for key in settings:
        if key.startswith("SHOWFLOOR_") and key not in known_env:
            err(f"{key} is not a setting the server reads (not in src/)")

    for key in ("SHOWFLOOR_NATS", "SHOWFLOOR_POSTGRES", "SHOWFLOOR_API_KEYS",
                "SHOWFLOOR_NODE_ID", "SHOWFLOOR_ADVERTISE"):
        if not settings.get(key):
            err(f"{key} (or its flag) is not set for the nodes")
    node_src = env.get("SHOWFLOOR_NODE_ID", {}).get("valueFrom", {}).get("fieldRef", {})
    if node_src.get("fieldPath") != "metadata.name":
        err("SHOWFLOOR_NODE_ID does not come from the pod name (fieldRef metadata.name)")
    if not str(settings.get("SHOWFLOOR_NATS", "")).startswith("nats://nats:"):
        err(f"SHOWFLOOR_NATS {settings.get('SHOWFLOOR_NATS')!r} is not the `nats` Service")
    if "@postgres:" not in str(settings.get("SHOWFLOOR_POSTGRES", "")):
        err(f"SHOWFLOOR_POSTGRES does not name the `postgres` Service")
    if "SHOWFLOOR_POSTGRES" in configmaps.get("showfloor-config", {}).get("data", {}):
        err("SHOWFLOOR_POSTGRES (with its password) belongs in the Secret, not the ConfigMap")

    for sec_name, sec in secrets.items():
        keys = str((sec.get("stringData") or {}).get("SHOWFLOOR_API_KEYS", ""))
        for k in keys.split(","):
            if len(k.strip()) >= 16 or "REPLACE" not in k:
                err(f"Secret {sec_name}: SHOWFLOOR_API_KEYS must hold only a REPLACE_ME "
                    "placeholder the server refuses (< 16 characters), never a usable key")
        if (sec.get("data") or {}):
            err(f"Secret {sec_name}: use stringData placeholders, not base64 data")

    ports = {p["name"]: p for p in c.get("ports") or []}
    media = srcfacts.port_of(settings.get("SHOWFLOOR_MEDIA_UDP_ADDR"), 7882)
    udp = [p for p in ports.values() if p.get("protocol") == "UDP"]
    if not any(p["containerPort"] == media and p.get("hostPort") == media for p in udp):
        err(f"media UDP port {media} is not a hostPort equal to the containerPort: {udp}")
    for setting, default in (("SHOWFLOOR_HTTP_ADDR", 7880), ("SHOWFLOOR_GRPC_ADDR", 7881)):
        port = srcfacts.port_of(settings.get(setting), default)
        if not any(p["containerPort"] == port and p.get("protocol", "TCP") == "TCP"
                   for p in ports.values()):
            err(f"container does not declare {port}/TCP ({setting})")
    if any("hostPort" in p for p in ports.values()):
        anti = pod.get("affinity", {}).get("podAntiAffinity", {})
        terms = anti.get("requiredDuringSchedulingIgnoredDuringExecution") or []
        if not any(t.get("topologyKey") == "kubernetes.io/hostname"
                   and selects(t["labelSelector"].get("matchLabels"), labels) for t in terms):
            err("hostPort without required pod anti-affinity per kubernetes.io/hostname")

    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        got = (c.get(probe) or {}).get("httpGet", {})
        if got.get("path") != path:
            err(f"{probe} path {got.get('path')!r}, expected {path}")
        elif got.get("path") not in routes:
            err(f"{probe} path {got.get('path')} is not routed by the server (src/)")
        if got and got.get("port") not in ports and got.get("port") not in \
                [p["containerPort"] for p in ports.values()]:
            err(f"{probe} port {got.get('port')!r} is not a container port")
    requests = (c.get("resources") or {}).get("requests") or {}
    if not {"cpu", "memory"} <= set(requests):
        err(f"resource requests need cpu and memory, got {requests}")
    if not pod.get("securityContext", {}).get("runAsNonRoot"):
        err("pod securityContext does not set runAsNonRoot")
    grace = int(settings.get("SHOWFLOOR_SHUTDOWN_GRACE_SECS", 10))
    if pod.get("terminationGracePeriodSeconds", 30) <= grace:
        err(f"terminationGracePeriodSeconds must exceed the server's drain ({grace} s)")

    services = objs.get("Service", {})
    governing = services.get(spec.get("serviceName"))
    if governing is None or governing["spec"].get("clusterIP") != "None":
        err(f"serviceName {spec.get('serviceName')!r} is not a headless Service here")
    if not any(s["spec"].get("clusterIP") != "None" for s in services.values()):
        err("no client-facing (non-headless) Service")
    for name, s in services.items():
        if not selects(s["spec"].get("selector"), labels):
            err(f"Service {name} does not select the nodes")
        for p in s["spec"].get("ports") or []:
            target = p.get("targetPort", p["port"])
            if target not in ports and target not in [q["containerPort"] for q in ports.values()]:
                err(f"Service {name} targets port {target!r}, not a container port")
    pdbs = objs.get("PodDisruptionBudget", {})
    if not any(selects(p["spec"]["selector"].get("matchLabels"), labels) for p in pdbs.values()):
        err("no PodDisruptionBudget selects the nodes")

    image = c["image"].rsplit(":", 1)[0]
    if not any(i.get("name") == image for i in kust.get("images") or []):
        err(f"kustomization.yaml images has no entry for {image!r}")
    return report(sum(len(named) for named in objs.values()))


def report(count=0):
    if errors:
        for e in errors:
            print(f"k8s: {e}")
        return 1
    print(f"k8s: ok ({count} manifests, all in kustomization.yaml, references consistent)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
