"""What the Kubernetes checkers share: a kustomization folder read into its resources by kind
and name, with the checks every folder must pass (the kustomization lists every manifest,
sets a namespace that namespace.yaml creates, one resource per file)."""

import pathlib

import yaml


def selects(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def load(folder, err):
    """`{kind: {name: resource}}` of `folder`, and its kustomization; problems go to `err`."""
    here = pathlib.Path(folder)
    kust = yaml.safe_load((here / "kustomization.yaml").read_text())
    files = sorted(p.name for p in here.glob("*.yaml") if p.name != "kustomization.yaml")
    listed = sorted(kust.get("resources") or [])
    if listed != files:
        err(f"kustomization.yaml resources {listed} != manifests in {here.name} {files}")
    if not kust.get("namespace"):
        err("kustomization.yaml sets no namespace")
    objs = {}
    for name in files:
        docs = [d for d in yaml.safe_load_all((here / name).read_text()) if d]
        if len(docs) != 1:
            err(f"{name}: expected one resource, found {len(docs)}")
        for d in docs:
            objs.setdefault(d["kind"], {})[d["metadata"]["name"]] = d
    if "Namespace" in objs and kust.get("namespace") not in objs["Namespace"]:
        err(f"namespace.yaml does not create kustomization's namespace {kust.get('namespace')}")
    return objs, kust
