#!/usr/bin/env python3
"""Schema check of the Kubernetes manifests in deploy/k8s (no cluster here): check_k8s.py DIR [ROUTES_FILE].

Every document is checked against the subset of the Kubernetes 1.30 OpenAPI schema that the manifests use
(field names, types, required fields, enums, taken from the API reference of each kind); a field outside
that subset is an error, as in kubeconform's strict mode, so a typo cannot pass. Then the rules Kubernetes
applies at admission that a schema does not express: backoffLimitPerIndex needs completionMode Indexed and
restartPolicy Never, selectors match the pod labels, probe ports name a container port, each Service's
selector matches a Deployment. With ROUTES_FILE (the server's source), probe paths must be routes it has.
Exit 1 with "file: document N: path: problem" lines."""
import pathlib
import re
import sys

import yaml

S, I, B = "string", "integer", "boolean"
INT_OR_STR, QTY = "int-or-string", "quantity"
MAP = {"*": S}  # map of strings
META = {"name": S, "labels": MAP, "annotations": MAP, "namespace": S}
SELECTOR = {"matchLabels": MAP}
HTTP_GET = {"path": S, "port": INT_OR_STR, "scheme": ("HTTP", "HTTPS")}
PROBE = {"httpGet": HTTP_GET, "initialDelaySeconds": I, "periodSeconds": I, "timeoutSeconds": I,
         "failureThreshold": I, "successThreshold": I}
RESOURCES = {"requests": {"cpu": QTY, "memory": QTY}, "limits": {"cpu": QTY, "memory": QTY}}
ENV = [{"!name": S, "value": S, "valueFrom": {"secretKeyRef": {"!name": S, "!key": S}}}]
CONTAINER = {
    "!name": S, "image": S, "imagePullPolicy": ("Always", "IfNotPresent", "Never"), "command": [S], "args": [S],
    "env": ENV, "envFrom": [{"secretRef": {"!name": S}, "configMapRef": {"!name": S}}],
    "ports": [{"!containerPort": I, "name": S, "protocol": ("TCP", "UDP", "SCTP")}],
    "readinessProbe": PROBE, "livenessProbe": PROBE, "startupProbe": PROBE, "resources": RESOURCES,
    "volumeMounts": [{"!name": S, "!mountPath": S, "readOnly": B}],
}
POD_SPEC = {
    "!containers": [CONTAINER], "restartPolicy": ("Always", "OnFailure", "Never"),
    "securityContext": {"runAsNonRoot": B, "runAsUser": I, "runAsGroup": I, "fsGroup": I},
    "volumes": [{"!name": S, "persistentVolumeClaim": {"!claimName": S, "readOnly": B}, "emptyDir": {"medium": S, "sizeLimit": QTY}}],
}
TEMPLATE = {"metadata": META, "spec": POD_SPEC}
JOB_SPEC = {
    "!template": TEMPLATE, "completions": I, "parallelism": I, "backoffLimit": I, "backoffLimitPerIndex": I,
    "maxFailedIndexes": I, "completionMode": ("NonIndexed", "Indexed"), "activeDeadlineSeconds": I, "ttlSecondsAfterFinished": I,
    "podFailurePolicy": {"!rules": [{"!action": ("FailJob", "FailIndex", "Ignore", "Count"),
                                     "onExitCodes": {"containerName": S, "!operator": ("In", "NotIn"), "!values": [I]}}]},
}
KINDS = {
    ("batch/v1", "Job"): JOB_SPEC,
    ("apps/v1", "Deployment"): {"!selector": SELECTOR, "!template": TEMPLATE, "replicas": I,
                                "strategy": {"type": ("RollingUpdate", "Recreate"),
                                             "rollingUpdate": {"maxUnavailable": INT_OR_STR, "maxSurge": INT_OR_STR}}},
    ("v1", "Service"): {"type": ("ClusterIP", "NodePort", "LoadBalancer"), "selector": MAP,
                        "!ports": [{"!port": I, "name": S, "targetPort": INT_OR_STR, "protocol": ("TCP", "UDP", "SCTP")}]},
    ("v1", "Secret"): {},
    ("v1", "PersistentVolumeClaim"): {"!accessModes": [("ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod")],
                                      "resources": {"requests": {"storage": QTY}}, "storageClassName": S},
}
QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")


def check(value, schema, path, errors):
    if isinstance(schema, tuple):
        if value not in schema:
            errors.append(f"{path}: {value!r} is not one of {', '.join(schema)}")
    elif isinstance(schema, list):
        if not isinstance(value, list):
            errors.append(f"{path}: expected a list")
            return
        for i, v in enumerate(value):
            check(v, schema[0], f"{path}[{i}]", errors)
    elif isinstance(schema, dict):
        if not isinstance(value, dict):
            errors.append(f"{path}: expected an object")
            return
        if "*" in schema:
            for k, v in value.items():
                check(v, schema["*"], f"{path}.{k}", errors)
            return
        fields = {k.lstrip("!"): v for k, v in schema.items()}
        for k in schema:
            if k.startswith("!") and k[1:] not in value:
                errors.append(f"{path}: required field '{k[1:]}' missing")
        for k, v in value.items():
            if k not in fields:
                errors.append(f"{path}: unknown field '{k}'")
            else:
                check(v, fields[k], f"{path}.{k}", errors)
    else:
        ok = {S: isinstance(value, str), I: isinstance(value, int) and not isinstance(value, bool), B: isinstance(value, bool),
              INT_OR_STR: isinstance(value, (int, str)) and not isinstance(value, bool),
              QTY: isinstance(value, int) or (isinstance(value, str) and bool(QUANTITY.match(value)))}[schema]
        if not ok:
            errors.append(f"{path}: {value!r} is not a {schema}")


def rules(doc, errors, routes):
    kind, spec = doc.get("kind"), doc.get("spec") or {}
    pod = ((spec.get("template") or {}).get("spec")) or {}
    labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    if kind == "Job" and "backoffLimitPerIndex" in spec:
        if spec.get("completionMode") != "Indexed":
            errors.append("spec.backoffLimitPerIndex: needs completionMode Indexed")
        if pod.get("restartPolicy") != "Never":
            errors.append("spec.backoffLimitPerIndex: needs template.spec.restartPolicy Never")
    if kind == "Job" and spec.get("completionMode") == "Indexed":
        for c in pod.get("containers", []):
            args = c.get("args", [])
            if "--shard-count" in args and str(spec.get("completions")) != args[args.index("--shard-count") + 1]:
                errors.append(f"container {c.get('name')}: --shard-count differs from spec.completions")
    if kind == "Job" and pod.get("restartPolicy") not in ("Never", "OnFailure"):
        errors.append("spec.template.spec.restartPolicy: a Job needs Never or OnFailure")
    if kind == "Deployment":
        for k, v in ((spec.get("selector") or {}).get("matchLabels") or {}).items():
            if labels.get(k) != v:
                errors.append(f"spec.selector.matchLabels.{k}: the pod template's labels do not match")
    for c in pod.get("containers", []):
        ports = {p.get("name") for p in c.get("ports", [])} | {p.get("containerPort") for p in c.get("ports", [])}
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            get = (c.get(probe) or {}).get("httpGet")
            if not get:
                continue
            if get.get("port") not in ports:
                errors.append(f"container {c.get('name')}.{probe}: port {get.get('port')!r} is not a container port")
            if routes is not None and get.get("path") not in routes:
                errors.append(f"container {c.get('name')}.{probe}: the server has no route {get.get('path')}")


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit("usage: check_k8s.py DIR [ROUTES_FILE]")
    routes = None
    if len(sys.argv) == 3:
        routes = set(re.findall(r'"(/health[a-z/]*)"', pathlib.Path(sys.argv[2]).read_text()))
    files = sorted(pathlib.Path(sys.argv[1]).glob("*.yaml"))
    if not files:
        sys.exit(f"{sys.argv[1]}: no .yaml manifest")
    problems, docs, deployments, services = [], 0, [], []
    for f in files:
        try:
            parsed = list(yaml.safe_load_all(f.read_text()))
        except yaml.YAMLError as e:
            problems.append(f"{f.name}: not YAML: {e}")
            continue
        for n, doc in enumerate(d for d in parsed if d is not None):
            docs += 1
            errors = []
            key = (doc.get("apiVersion"), doc.get("kind")) if isinstance(doc, dict) else None
            if key not in KINDS:
                errors.append(f"apiVersion/kind {key} is not one the manifests may use ({', '.join(k for _, k in KINDS)})")
            else:
                check(doc, {"!apiVersion": S, "!kind": S, "!metadata": dict(META, **{"!name": S}), "type": S, "spec": KINDS[key],
                            "stringData": MAP, "data": MAP}, "", errors)
                rules(doc, errors, routes)
                (deployments if key[1] == "Deployment" else services if key[1] == "Service" else []).append(doc)
            problems += [f"{f.name}: document {n}: {e}" for e in errors]
    for s in services:
        sel = s.get("spec", {}).get("selector", {})
        if not any(all(d["spec"]["template"]["metadata"]["labels"].get(k) == v for k, v in sel.items()) for d in deployments):
            problems.append(f"Service {s['metadata']['name']}: its selector matches no Deployment's pods")
    for p in problems:
        print(p)
    if problems:
        sys.exit(1)
    print(f"{len(files)} files, {docs} documents: valid")


if __name__ == "__main__":
    main()
