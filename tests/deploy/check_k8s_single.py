"""Cross-resource checks of deploy/k8s-single (one node on its embedded store) that schema
validation cannot make: kustomization.yaml lists every manifest; one Deployment, one replica,
Recreate; the data directory on the PersistentVolumeClaim; no cluster settings; the Secret
holds only a placeholder; host networking with the media port declared and matching the
server's setting; the open-file limit raised for the connection limit; probes on paths the
server routes; a non-root, read-only, capability-free container; Services that select the pod
and target its ports.
Run by tests/deploy_files.rs with the venv's Python:
    python tests/deploy/check_k8s_single.py REPO_ROOT
Prints one line per problem and exits 1, or prints a summary and exits 0."""

import pathlib
import sys


import srcfacts
from kustomized import load, selects

errors = []


def err(msg):
    errors.append(msg)


def main(root):
    here = pathlib.Path(root, "deploy", "k8s-single")
    known_env = srcfacts.env_names(root)
    routes = srcfacts.routes(root)

    objs, kust = load(here, err)
    if "StatefulSet" in objs:
        err("a StatefulSet: the single node is a Deployment (deploy/k8s is the cluster)")

    deployments = objs.get("Deployment", {})
    if len(deployments) != 1:
        err(f"expected one Deployment, found {sorted(deployments)}")
        return report()
    dep = next(iter(deployments.values()))
    spec, pod = dep["spec"], dep["spec"]["template"]["spec"]
    labels = dep["spec"]["template"]["metadata"].get("labels", {})
    if spec.get("replicas") != 1:
        err(f"replicas {spec.get('replicas')!r}: one node writes the SQLite store")
    if (spec.get("strategy") or {}).get("type") != "Recreate":
        err("strategy is not Recreate: a new pod would start beside the old one on the same "
            "ReadWriteOnce volume and host ports")
    if not selects(spec["selector"].get("matchLabels"), labels):
        err("Deployment selector does not match its pod labels")
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
                err(f"envFrom names ConfigMap {ref['configMapRef']['name']!r}, not here")
            else:
                settings.update(cm.get("data") or {})
        if "secretRef" in ref:
            sec = secrets.get(ref["secretRef"]["name"])
            if sec is None:
                err(f"envFrom names Secret {ref['secretRef']['name']!r}, not here")
            else:
                settings.update(sec.get("stringData") or {})
    settings.update({e["name"]: e.get("value", "") for e in c.get("env") or []})
    script = " ".join(str(a) for a in (c.get("command") or []) + (c.get("args") or []))
    settings.update(srcfacts.flags_to_env(script.split()))
    for key in settings:
        if key.startswith("SHOWFLOOR_") and key not in known_env:
            err(f"{key} is not a setting the server reads (not in src/)")
    for key in ("SHOWFLOOR_NATS", "SHOWFLOOR_POSTGRES", "SHOWFLOOR_ADVERTISE", "SHOWFLOOR_STORE"):
        if key in settings:
            err(f"{key} is a cluster setting; the single node uses the embedded store")
    if not settings.get("SHOWFLOOR_API_KEYS"):
        err("SHOWFLOOR_API_KEYS is not set")
    for sec_name, sec in secrets.items():
        for k in str((sec.get("stringData") or {}).get("SHOWFLOOR_API_KEYS", "")).split(","):
            if len(k.strip()) >= 16 or "REPLACE" not in k:
                err(f"Secret {sec_name}: SHOWFLOOR_API_KEYS must hold only a REPLACE_ME "
                    "placeholder the server refuses (< 16 characters), never a usable key")
        if sec.get("data"):
            err(f"Secret {sec_name}: use stringData placeholders, not base64 data")
    if "serve" not in script.split() or "--dev" in script.split():
        err(f"the container does not run `showfloor serve` (without --dev): {script!r}")

    # The store: SHOWFLOOR_DATA_DIR is a mount of the PersistentVolumeClaim.
    data_dir = settings.get("SHOWFLOOR_DATA_DIR") or srcfacts.flag_default(
        root, "SHOWFLOOR_DATA_DIR")
    mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts") or []}
    volumes = {v["name"]: v for v in pod.get("volumes") or []}
    claim = (volumes.get(mounts.get(data_dir), {}).get("persistentVolumeClaim") or {})
    pvcs = objs.get("PersistentVolumeClaim", {})
    if claim.get("claimName") not in pvcs:
        err(f"the data directory {data_dir} is not a mount of a PersistentVolumeClaim here "
            f"(mounts {mounts})")
    for pvc_name, pvc in pvcs.items():
        if pvc["spec"].get("accessModes") != ["ReadWriteOnce"]:
            err(f"PVC {pvc_name}: accessModes should be [ReadWriteOnce] (one SQLite writer)")

    # Media: host networking, the media port declared as UDP and equal to the setting.
    if pod.get("hostNetwork") is not True:
        err("hostNetwork is not true: the ICE candidates would name the pod's private address")
    if pod.get("dnsPolicy") != "ClusterFirstWithHostNet":
        err("dnsPolicy should be ClusterFirstWithHostNet on the host's network")
    ports = {p["name"]: p for p in c.get("ports") or []}
    media = srcfacts.port_of(settings.get("SHOWFLOOR_MEDIA_UDP_ADDR"), 7882)
    if not any(p["containerPort"] == media and p.get("protocol") == "UDP"
               for p in ports.values()):
        err(f"media port {media}/UDP is not declared on the container: {list(ports.values())}")
    for setting, default in (("SHOWFLOOR_HTTP_ADDR", 7880), ("SHOWFLOOR_GRPC_ADDR", 7881)):
        port = srcfacts.port_of(settings.get(setting), default)
        if not any(p["containerPort"] == port and p.get("protocol", "TCP") == "TCP"
                   for p in ports.values()):
            err(f"container does not declare {port}/TCP ({setting})")

    # Open files: the soft limit raised to the hard one before the server starts (a pod
    # cannot set rlimits), and the server stays PID 1 (exec).
    if 'ulimit -Sn "$$(ulimit -Hn)"' not in script or "exec showfloor serve" not in script:
        err(f"the container does not raise its open-file soft limit and exec the server: "
            f"{script!r}")

    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz"),
                        ("startupProbe", "/readyz")):
        got = (c.get(probe) or {}).get("httpGet", {})
        if got.get("path") != path:
            err(f"{probe} path {got.get('path')!r}, expected {path}")
        elif path not in routes:
            err(f"{probe} path {path} is not routed by the server (src/)")
        if got and got.get("port") not in ports and got.get("port") not in \
                [p["containerPort"] for p in ports.values()]:
            err(f"{probe} port {got.get('port')!r} is not a container port")

    psc, csc = pod.get("securityContext") or {}, c.get("securityContext") or {}
    if not psc.get("runAsNonRoot") or psc.get("runAsUser") in (None, 0):
        err("pod securityContext does not run as a non-root uid")
    if not psc.get("fsGroup"):
        err("no fsGroup: the volume would not be writable by the image's user")
    if csc.get("readOnlyRootFilesystem") is not True:
        err("readOnlyRootFilesystem is not true")
    if csc.get("allowPrivilegeEscalation") is not False:
        err("allowPrivilegeEscalation is not false")
    if (csc.get("capabilities") or {}).get("drop") != ["ALL"]:
        err("capabilities are not dropped (drop: [ALL])")
    if pod.get("automountServiceAccountToken") is not False:
        err("the pod mounts a service account token it does not need")
    requests = (c.get("resources") or {}).get("requests") or {}
    if not {"cpu", "memory"} <= set(requests):
        err(f"resource requests need cpu and memory, got {requests}")
    grace = int(settings.get("SHOWFLOOR_SHUTDOWN_GRACE_SECS")
                or srcfacts.flag_default(root, "SHOWFLOOR_SHUTDOWN_GRACE_SECS"))
    if pod.get("terminationGracePeriodSeconds", 30) <= grace:
        err(f"terminationGracePeriodSeconds must exceed the server's drain ({grace} s)")

    services = objs.get("Service", {})
    if not services:
        err("no Service")
    for name, s in services.items():
        if not selects(s["spec"].get("selector"), labels):
            err(f"Service {name} does not select the pod")
        for p in s["spec"].get("ports") or []:
            target = p.get("targetPort", p["port"])
            if target not in ports and target not in [q["containerPort"] for q in ports.values()]:
                err(f"Service {name} targets port {target!r}, not a container port")

    image = c["image"].rsplit(":", 1)[0]
    if not any(i.get("name") == image for i in kust.get("images") or []):
        err(f"kustomization.yaml images has no entry for {image!r}")
    return report(sum(len(named) for named in objs.values()))


def report(count=0):
    if errors:
        for e in errors:
            print(f"k8s-single: {e}")
        return 1
    print(f"k8s-single: ok ({count} manifests, all in kustomization.yaml, references "
          "consistent)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
