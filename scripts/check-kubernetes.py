#!/usr/bin/env python3
"""Checks deploy/kubernetes/ beyond schema validation, and that the validator is alive.

Usage: check-kubernetes.py VALIDATOR SERVER_BINARY

1. Every manifest passes `VALIDATOR --strict -k VERSION` (kubernetes-validate, the Kubernetes
   OpenAPI schemas bundled in the wheel, no cluster needed).
2. The validator is not vacuous: a copy of the Deployment with a port number written as text
   and an unknown field must fail.
3. The manifests agree with the server they deploy: every `--flag` in the container's args is
   one `SERVER_BINARY --help` lists; the probes and the Service point at the container's gRPC
   port; readiness asks for a model's health name (`prosodia.v1.Model/<name>`) of a model that
   exists under models/; the autoscaler's metric is documented as derived from a histogram the
   server exports (named in server/app/src/metrics.rs); the feature-extraction Job is Indexed
   and its `--shard` count equals its completions.

Exits non-zero with a message naming each failure.
"""

import re
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

KUBERNETES_VERSION = "1.31.0"
ROOT = Path(__file__).resolve().parent.parent
MANIFESTS = ROOT / "deploy" / "kubernetes"


def validate(validator: str, files: list[Path]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [validator, "--strict", "-k", KUBERNETES_VERSION, *map(str, files)],
        capture_output=True,
        text=True,
    )


def main() -> int:
    validator, server = sys.argv[1], sys.argv[2]
    failures: list[str] = []
    files = sorted(MANIFESTS.glob("*.yaml"))
    if not files:
        failures.append(f"no manifests in {MANIFESTS}")
    result = validate(validator, files)
    print(result.stdout, end="")
    if result.returncode != 0:
        failures.append(f"schema validation failed:\n{result.stdout}{result.stderr}")

    docs = {}
    for f in files:
        for doc in yaml.safe_load_all(f.read_text()):
            docs[doc["kind"]] = doc
    deployment = docs.get("Deployment")
    if deployment is None:
        failures.append("no Deployment")
        return report(failures)

    broken = yaml.safe_load((MANIFESTS / "deployment.yaml").read_text())
    container = broken["spec"]["template"]["spec"]["containers"][0]
    container["ports"][0]["containerPort"] = "fifty-thousand"
    container["colour"] = "blue"
    with tempfile.TemporaryDirectory() as tmp:
        bad = Path(tmp) / "broken.yaml"
        bad.write_text(yaml.safe_dump(broken))
        if validate(validator, [bad]).returncode == 0:
            failures.append("the validator accepted a deliberately broken Deployment")

    container = deployment["spec"]["template"]["spec"]["containers"][0]
    help_text = subprocess.run([server, "--help"], capture_output=True, text=True).stdout
    known = set(re.findall(r"--[a-z][a-z0-9-]*", help_text))
    if not known:
        failures.append(f"{server} --help listed no flags")
    for arg in container.get("args", []):
        flag = arg.split("=", 1)[0]
        if flag.startswith("--") and flag not in known:
            failures.append(f"Deployment passes {flag}, which prosodia-server does not accept")

    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    listen = next((a for a in container["args"] if a.startswith("--listen=")), "")
    if not listen.endswith(f":{ports.get('grpc')}"):
        failures.append(f"--listen ({listen}) does not match the grpc containerPort")
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        grpc = container.get(probe, {}).get("grpc")
        if grpc is None:
            failures.append(f"{probe} is not a gRPC health probe")
        elif grpc["port"] != ports.get("grpc"):
            failures.append(f"{probe} probes port {grpc['port']}, not the grpc port")
    ready = container["readinessProbe"]["grpc"].get("service", "")
    match = re.fullmatch(r"prosodia\.v1\.Model/(.+)", ready)
    if not match or not (ROOT / "models" / match.group(1)).is_dir():
        failures.append(f"readiness asks for {ready!r}, not the health name of a bundled model")

    service = docs.get("Service", {})
    if service.get("spec", {}).get("clusterIP") != "None":
        failures.append("the Service is not headless (clusterIP: None)")
    targets = [p.get("targetPort") for p in service.get("spec", {}).get("ports", [])]
    if "grpc" not in targets:
        failures.append("the Service does not target the grpc port")

    hpa = docs.get("HorizontalPodAutoscaler")
    metrics_rs = (ROOT / "server" / "app" / "src" / "metrics.rs").read_text()
    hpa_text = (MANIFESTS / "hpa.yaml").read_text()
    exported = set(re.findall(r"`(prosodia_[a-z_]+)`", metrics_rs))
    used = set(re.findall(r"(prosodia_[a-z_]+_seconds)_(?:sum|count)", hpa_text))
    if hpa is None or not used or not used <= exported:
        failures.append(f"the autoscaler's source metric {used} is not one the server exports")
    job = docs.get("Job")
    if job is not None:
        spec = job["spec"]
        args = spec["template"]["spec"]["containers"][0]["args"]
        shard = next((a for a in args if a.startswith("--shard=")), None)
        wanted = f"--shard=$(SHARD_INDEX)/{spec['completions']}"
        if spec.get("completionMode") != "Indexed" or shard != wanted:
            failures.append(f"the features Job must be Indexed with {wanted}, has {shard}")
        if spec.get("parallelism") != spec.get("completions"):
            failures.append("the features Job's parallelism differs from its completions")
    return report(failures)


def report(failures: list[str]) -> int:
    for f in failures:
        print(f"check-kubernetes: {f}", file=sys.stderr)
    if not failures:
        print("check-kubernetes: all manifests valid and consistent with the server")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
