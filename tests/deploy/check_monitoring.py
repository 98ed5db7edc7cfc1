"""deploy/prometheus/alerts.yaml and deploy/grafana/showfloor.json against the server:
every series an alert or a dashboard query names must be one the server exports, as scraped
from a running `showfloor serve` (tests/deploy_files.rs starts it and saves GET /metrics), or
Prometheus's own `up`. Queries are parsed with a PromQL parser (promql-parser), not matched
by pattern. Also the structure promtool and Grafana do not insist on: alerts with a severity,
a summary and a description; dashboard panels with unique ids inside the 24-column grid,
the data source variable everywhere and only defined template variables.
Run by tests/deploy_files.rs with the venv's Python:
    python tests/deploy/check_monitoring.py REPO_ROOT METRICS_FILE
    python tests/deploy/check_monitoring.py --dashboard-rules REPO_ROOT OUT_FILE
The second form writes the dashboard's queries as recording rules, so that `promtool check
rules` parses them with Prometheus's own parser.
Prints one line per problem and exits 1, or prints a summary and exits 0."""

import json
import pathlib
import re
import sys

import promql_parser
import yaml

errors = []

# Series Prometheus adds to every target itself.
PROMETHEUS_SERIES = {"up"}
# Grafana's global variables, as durations for the parser.
GRAFANA_DURATIONS = {"__rate_interval": "5m", "__interval": "1m", "__range": "1h"}
SUFFIXES = {
    "counter": ["_total", "_created"],
    "gauge": [""],
    "histogram": ["_bucket", "_sum", "_count", "_created"],
    "gaugehistogram": ["_bucket", "_gsum", "_gcount"],
    "summary": ["", "_sum", "_count", "_created"],
    "info": ["_info"],
    "stateset": [""],
    "unknown": [""],
}
SEVERITIES = {"critical", "warning", "info"}


def err(msg):
    errors.append(msg)


def exported(text):
    """Series names a scrape may hold: every sample's name, and for each `# TYPE` family the
    names its type gives (a counter `x` is `x_total`, a histogram `x_bucket` …)."""
    names, families = set(), {}
    for line in text.splitlines():
        m = re.match(r"# TYPE (\S+) (\S+)", line)
        if m:
            families[m.group(1)] = m.group(2)
            names.update(m.group(1) + s for s in SUFFIXES.get(m.group(2), [""]))
        elif line and not line.startswith("#"):
            names.add(re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0))
    return names, families


def registered(root):
    """The families src/metrics.rs registers (prefix `showfloor_`), whether or not they have
    samples yet."""
    text = pathlib.Path(root, "src", "metrics.rs").read_text()
    prefix = re.search(r'Registry::with_prefix\("([^"]+)"\)', text)
    names = re.findall(r'registry\.register\(\s*"([a-z0-9_]+)"', text)
    return {f"{prefix.group(1)}_{n}" if prefix else n for n in names}


def grafana_to_promql(expr):
    """A dashboard query with its variables replaced so that it parses."""
    def sub(m):
        name = m.group(1) or m.group(2)
        return GRAFANA_DURATIONS.get(name, "x")
    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", sub, expr)


def series_of(expr, where):
    """The metric names an expression selects; a parse error is a problem."""
    try:
        ast = promql_parser.parse(expr)
    except Exception as e:  # the parser raises ValueError and friends
        err(f"{where}: does not parse as PromQL ({e}): {expr}")
        return set()
    names = set()

    def visit(node):
        if isinstance(node, promql_parser.VectorSelector):
            name = node.name
            if name is None:
                for m in node.matchers.matchers:
                    if m.name == "__name__":
                        name = m.value
            if name is None:
                err(f"{where}: a selector without a metric name: {expr}")
            else:
                names.add(name)
        return True

    promql_parser.walk(ast, visit)
    return names


def alert_queries(root):
    """[(where, expr)] of alerts.yaml, checking its structure on the way."""
    doc = yaml.safe_load(pathlib.Path(root, "deploy", "prometheus", "alerts.yaml").read_text())
    out, seen_groups, seen_alerts = [], set(), set()
    for group in doc.get("groups") or []:
        gname = group.get("name")
        if not gname or gname in seen_groups:
            err(f"alerts.yaml: group name {gname!r} missing or repeated")
        seen_groups.add(gname)
        for rule in group.get("rules") or []:
            name = rule.get("alert")
            where = f"alerts.yaml {gname}/{name}"
            if not name or "record" in rule:
                err(f"{where}: every rule here is an alert (no recording rules)")
                continue
            if not re.fullmatch(r"Showfloor[A-Z][A-Za-z0-9]+", name) or name in seen_alerts:
                err(f"{where}: alert names are unique and ShowfloorCamelCase")
            seen_alerts.add(name)
            if "for" in rule and not re.fullmatch(r"\d+[smh]", str(rule["for"])):
                err(f"{where}: `for: {rule['for']}` is not a duration")
            if (rule.get("labels") or {}).get("severity") not in SEVERITIES:
                err(f"{where}: labels.severity must be one of {sorted(SEVERITIES)}")
            ann = rule.get("annotations") or {}
            if not ann.get("summary") or not ann.get("description"):
                err(f"{where}: needs annotations summary and description")
            out.append((where, str(rule.get("expr", ""))))
    if not seen_alerts:
        err("alerts.yaml: no alerts")
    return out, seen_alerts


def dashboard_queries(root):
    """[(where, expr)] of the dashboard (panels and template variables), checking its
    structure on the way. Exprs are returned as written (with Grafana variables)."""
    dash = json.loads(pathlib.Path(root, "deploy", "grafana", "showfloor.json").read_text())
    for key in ("title", "uid", "schemaVersion", "panels", "templating"):
        if key not in dash:
            err(f"showfloor.json: no {key!r}")
    variables = {v["name"]: v for v in (dash.get("templating") or {}).get("list") or []}
    ds_vars = [n for n, v in variables.items() if v.get("type") == "datasource"]
    if ds_vars != ["datasource"] or variables["datasource"].get("query") != "prometheus":
        err(f"showfloor.json: expected one Prometheus data source variable `datasource`, "
            f"got {ds_vars}")
    want_ds = {"type": "prometheus", "uid": "${datasource}"}
    out, ids = [], set()

    def used_vars(expr, where):
        for m in re.finditer(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", expr):
            name = m.group(1) or m.group(2)
            if name not in variables and name not in GRAFANA_DURATIONS:
                err(f"{where}: uses ${name}, not a template variable of the dashboard")

    for name, v in variables.items():
        if v.get("type") != "query":
            continue
        where = f"showfloor.json variable {name}"
        if v.get("datasource") != want_ds:
            err(f"{where}: data source is not ${{datasource}}")
        q = v.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        m = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", q or "")
        if not m:
            err(f"{where}: query {q!r} is not label_values(SERIES, LABEL)")
            continue
        used_vars(m.group(1), where)
        out.append((where, m.group(1)))

    def walk(panels):
        for p in panels:
            where = f"showfloor.json panel {p.get('id')} {p.get('title')!r}"
            if p.get("id") in ids or not isinstance(p.get("id"), int):
                err(f"{where}: panel ids must be unique integers")
            ids.add(p.get("id"))
            g = p.get("gridPos") or {}
            if not {"x", "y", "w", "h"} <= set(g) or g["x"] + g["w"] > 24:
                err(f"{where}: gridPos {g} is not inside the 24-column grid")
            if p.get("type") == "row":
                walk(p.get("panels") or [])
                continue
            if not p.get("title") or not p.get("description"):
                err(f"{where}: needs a title and a description")
            if p.get("datasource") != want_ds:
                err(f"{where}: data source is not ${{datasource}}")
            refs = [t.get("refId") for t in p.get("targets") or []]
            if not refs or len(set(refs)) != len(refs):
                err(f"{where}: needs targets with unique refIds, got {refs}")
            for t in p.get("targets") or []:
                if t.get("datasource") != want_ds:
                    err(f"{where} {t.get('refId')}: data source is not ${{datasource}}")
                used_vars(t.get("expr", ""), where)
                out.append((f"{where} {t.get('refId')}", t.get("expr", "")))

    walk(dash.get("panels") or [])
    return out


def dashboard_rules(root, out_file):
    rules = [{"record": f"showfloor_dashboard:query_{i}", "expr": grafana_to_promql(e)}
             for i, (_, e) in enumerate(dashboard_queries(root))]
    pathlib.Path(out_file).write_text(
        yaml.safe_dump({"groups": [{"name": "dashboard-queries", "rules": rules}]}))
    return report(f"{len(rules)} dashboard queries written to {out_file}")


def main(root, metrics_file):
    text = pathlib.Path(metrics_file).read_text()
    names, families = exported(text)
    if not any(n.startswith("showfloor_") for n in names):
        err(f"{metrics_file} holds no showfloor_ series: is it a scrape of the server?")
    known = names | PROMETHEUS_SERIES

    queries, alerts = alert_queries(root)
    dash = dashboard_queries(root)
    used = {}
    for where, expr in queries + [(w, grafana_to_promql(e)) for w, e in dash]:
        for name in series_of(expr, where):
            used.setdefault(name, []).append(where)
    for name, wheres in sorted(used.items()):
        if name not in known:
            err(f"{name} is not exported by the server (used by {', '.join(wheres[:3])}"
                f"{' …' if len(wheres) > 3 else ''})")

    # Notes, not failures: what the scrape lacks and what nothing shows.
    for family in sorted(registered(root) - set(families)):
        print(f"note: {family} is registered in src/metrics.rs but was not in the scrape "
              "(a labelled family shows only once it has a sample)")
    for family, kind in sorted(families.items()):
        if not any(family + s in used for s in SUFFIXES.get(kind, [""])):
            print(f"note: {family} ({kind}) is exported but no alert or panel uses it")
    return report(f"{len(alerts)} alerts and {len(dash)} dashboard queries use "
                  f"{len(used)} series, all exported ({len(families)} families scraped)")


def report(summary):
    if errors:
        for e in errors:
            print(f"monitoring: {e}")
        return 1
    print(f"monitoring: ok ({summary})")
    return 0


if __name__ == "__main__":
    if sys.argv[1] == "--dashboard-rules":
        sys.exit(dashboard_rules(sys.argv[2], sys.argv[3]))
    sys.exit(main(sys.argv[1], sys.argv[2]))
