#!/usr/bin/env python3
"""Lint, render and validate the mk8-operator Helm chart without a helm binary.

Needs: pip install helm-python-sdk kubernetes-validate

For the default values and every file in tests/chart/values/:
  - helm lint (warnings count as failures),
  - render, then validate every manifest with kubernetes-validate --strict for Kubernetes 1.33.0,
  - check the objects each values file is meant to produce.
Every file in tests/chart/bad-values/ must be refused by values.schema.json with the message its
first line names (`# expect: ...`). The chart's CRDs are validated too, and the values table of
the chart's README.md must name exactly the keys of values.yaml.

Writes <out>/rendered.json: per values file, the Deployment's container command/args/env and the
rendered RBAC objects, and <out>/<values>.yaml: the rendered manifests. tests/e2e/chart.rs reads them.
Exit status 0 when everything passed; otherwise every failure is printed and the status is 1.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

try:
    import helm_python as helm
    import kubernetes_validate
    import yaml
except ModuleNotFoundError as missing:
    sys.exit(
        f"missing Python module {missing.name!r}: pip install helm-python-sdk kubernetes-validate"
    )

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "mk8-operator"
VALUES_DIR = Path(__file__).resolve().parent / "values"
BAD_VALUES_DIR = Path(__file__).resolve().parent / "bad-values"
KUBERNETES_VERSION = "1.33.0"
RELEASE = "mk8-operator"
NAMESPACE = "mk8-system"

# Kinds whose schema kubernetes-validate does not have: the Prometheus Operator's ServiceMonitor
# is a CRD, not part of Kubernetes. Only these are skipped, and each skip is printed.
NOT_IN_KUBERNETES = {("monitoring.coreos.com/v1", "ServiceMonitor")}

# What each values file must produce, beyond validity: kinds present and absent.
EXPECTED_KINDS = {
    "default": {
        "present": {"Deployment", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role",
                    "RoleBinding", "Service"},
        "absent": {"ServiceMonitor", "NetworkPolicy", "PodDisruptionBudget", "ConfigMap"},
    },
    "argocd-health-checks": {
        "present": {"Deployment", "ServiceAccount", "ClusterRole", "Role", "Service", "ConfigMap"},
        "absent": {"ServiceMonitor", "NetworkPolicy", "PodDisruptionBudget"},
    },
    "ha-metrics": {
        "present": {"Deployment", "ServiceMonitor", "NetworkPolicy", "PodDisruptionBudget",
                    "ClusterRole", "Role"},
        "absent": set(),
    },
    "single-namespace": {
        "present": {"Deployment", "Role", "RoleBinding", "ClusterRole"},
        "absent": {"ServiceMonitor", "NetworkPolicy", "PodDisruptionBudget", "ConfigMap"},
    },
}


class Failures:
    """Collects failures so that one run reports all of them."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def add(self, message: str) -> None:
        self.messages.append(message)
        print(f"FAIL {message}", file=sys.stderr)


def values_sets() -> dict[str, dict]:
    """The default values (as {}) and every tests/chart/values/*.yaml, by name."""
    sets = {"default": {}}
    for path in sorted(VALUES_DIR.glob("*.yaml")):
        sets[path.stem] = yaml.safe_load(path.read_text()) or {}
    return sets


def lint(name: str, values: dict, failures: Failures) -> None:
    result = helm.lint(str(CHART), values, strict=True)
    problems = [m for m in result.get("messages", []) if m.get("severity", 0) >= 2]
    for problem in problems:
        failures.add(f"lint [{name}] {problem.get('path')}: {problem.get('error')}")
    for error in result.get("errors", []):
        if not any(error in (p.get("error") or "") for p in problems):
            failures.add(f"lint [{name}]: {error}")
    if not problems and not result.get("errors"):
        print(f"ok   lint [{name}]")


def render(chart, values: dict) -> list[tuple[str, dict]]:
    """Render with `values`; returns (template, manifest) pairs in template order."""
    files = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    return [
        (template, doc)
        for template, text in sorted(files.items())
        if not template.endswith("NOTES.txt")
        for doc in yaml.safe_load_all(text)
        if doc
    ]


def validate(name: str, rendered: list[tuple[str, dict]], failures: Failures) -> None:
    for template, manifest in rendered:
        key = (manifest.get("apiVersion"), manifest.get("kind"))
        label = f"{key[1]}/{manifest['metadata'].get('name')} ({template}, {name})"
        if key in NOT_IN_KUBERNETES:
            print(f"skip {label}: {key[0]} is a CRD unknown to kubernetes-validate")
            continue
        try:
            kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
            print(f"ok   valid {label}")
        except kubernetes_validate.ValidationError as error:
            path = "/".join(str(p) for p in error.path)
            failures.add(f"invalid {label} at {path or '/'}: {error.message}")
        except kubernetes_validate.SchemaNotFoundError as error:
            failures.add(f"no schema for {label}: {error}")


def check_kinds(name: str, manifests: list[dict], failures: Failures) -> None:
    expected = EXPECTED_KINDS.get(name)
    if expected is None:
        failures.add(f"values file {name}.yaml has no entry in EXPECTED_KINDS in {__file__}")
        return
    kinds = {m["kind"] for m in manifests}
    for kind in sorted(expected["present"] - kinds):
        failures.add(f"[{name}] renders no {kind}")
    for kind in sorted(expected["absent"] & kinds):
        failures.add(f"[{name}] renders a {kind} it should not")


def summary(manifests: list[dict]) -> dict:
    """What the Rust test needs: the operator container and the RBAC objects."""
    deployments = [m for m in manifests if m["kind"] == "Deployment"]
    containers = deployments[0]["spec"]["template"]["spec"]["containers"] if deployments else []
    operator = next((c for c in containers if c["name"] == "operator"), {})
    rbac = [
        {
            "kind": m["kind"],
            "name": m["metadata"]["name"],
            "namespace": m["metadata"].get("namespace"),
            "rules": m.get("rules"),
            "roleRef": m.get("roleRef"),
            "subjects": m.get("subjects"),
        }
        for m in manifests
        if m["apiVersion"].startswith("rbac.authorization.k8s.io/")
    ]
    return {
        "image": operator.get("image"),
        "command": operator.get("command"),
        "args": operator.get("args", []),
        "env": operator.get("env", []),
        "ports": operator.get("ports", []),
        "livenessProbe": operator.get("livenessProbe"),
        "readinessProbe": operator.get("readinessProbe"),
        "securityContext": operator.get("securityContext"),
        "replicas": deployments[0]["spec"].get("replicas") if deployments else None,
        "kinds": sorted({m["kind"] for m in manifests}),
        "rbac": rbac,
    }


def refuse_bad_values(chart, failures: Failures) -> None:
    for path in sorted(BAD_VALUES_DIR.glob("*.yaml")):
        text = path.read_text()
        first = text.splitlines()[0] if text else ""
        if not first.startswith("# expect: "):
            failures.add(f"{path.name}: the first line must be `# expect: <part of the error>`")
            continue
        expected = first.removeprefix("# expect: ").strip()
        try:
            chart.render(yaml.safe_load(text) or {}, name=RELEASE, namespace=NAMESPACE)
        except helm.HelmError as error:
            if expected in str(error):
                print(f"ok   refused {path.name}: {str(error).strip().splitlines()[-1]}")
            else:
                failures.add(f"{path.name} refused, but without {expected!r}: {error}")
            continue
        failures.add(f"{path.name} was accepted; values.schema.json must refuse it")


def check_readme_table(failures: Failures) -> None:
    """The README's values table and values.yaml name the same keys."""
    readme = (CHART / "README.md").read_text()
    documented = set(re.findall(r"^\| `([A-Za-z0-9_.]+)` \|", readme, flags=re.MULTILINE))
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())

    def walk(values: dict, prefix: str) -> None:
        for key, value in values.items():
            path = f"{prefix}{key}"
            if path in documented:
                continue
            if isinstance(value, dict) and value:
                walk(value, f"{path}.")
            else:
                failures.add(f"values.yaml key {path} is missing from the table in README.md")

    def exists(path: str) -> bool:
        node = defaults
        for part in path.split("."):
            if not isinstance(node, dict) or part not in node:
                return False
            node = node[part]
        return True

    walk(defaults, "")
    for path in sorted(documented):
        if not exists(path):
            failures.add(f"README.md documents {path}, which values.yaml does not have")
    print(f"ok   README.md documents the {len(documented)} values")


def validate_crds(failures: Failures) -> None:
    for path in sorted((CHART / "crds").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            try:
                kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
                print(f"ok   valid crds/{path.name}")
            except kubernetes_validate.ValidationError as error:
                where = "/".join(str(p) for p in error.path)
                failures.add(f"invalid crds/{path.name} at {where}: {error.message}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "target" / "chart-check",
                        help="directory for rendered.json and the rendered manifests")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    failures = Failures()
    rendered = {}
    with helm.Chart.load(str(CHART)) as chart:
        for name, values in values_sets().items():
            lint(name, values, failures)
            try:
                pairs = render(chart, values)
            except helm.HelmError as error:
                failures.add(f"render [{name}]: {error}")
                continue
            manifests = [manifest for _, manifest in pairs]
            (args.out / f"{name}.yaml").write_text(yaml.safe_dump_all(manifests, sort_keys=False))
            validate(name, pairs, failures)
            check_kinds(name, manifests, failures)
            rendered[name] = summary(manifests)
        refuse_bad_values(chart, failures)
    validate_crds(failures)
    check_readme_table(failures)
    (args.out / "rendered.json").write_text(json.dumps(rendered, indent=2))
    if failures.messages:
        print(f"\n{len(failures.messages)} chart check(s) failed:", file=sys.stderr)
        for message in failures.messages:
            print(f"  - {message}", file=sys.stderr)
        return 1
    print(f"\nall chart checks passed; rendered output in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
