"""Validate the Kubernetes manifests of a directory offline (`cargo xtask k8s-check`).

usage: validate.py DIR KUBERNETES_VERSION...

* Built-in kinds: against the JSON schemas that the `kubernetes-validate` package
  carries, strict (an unknown field is an error), for every version given.
* keda.sh/v1alpha1 ScaledObject: against the models that `cloudcoil.models.keda`
  generates from KEDA's CRD; a field the model does not know (and so drops) is an
  error too. A `redis` trigger's metadata keys are checked against the redis
  scaler's documented parameters.
* kustomization.yaml: its `resources` exist, and every other manifest is listed.

Prints one line per problem and exits 3 when anything fails (1 is a crash).
"""

import pathlib
import sys

import kubernetes_validate
import yaml
from cloudcoil.models.keda.v1alpha1 import ScaledObject

# The redis (lists) scaler's parameters (keda.sh/docs/scalers/redis-lists).
REDIS_SCALER_KEYS = {
    "address", "host", "port", "addressFromEnv", "hostFromEnv", "portFromEnv",
    "usernameFromEnv", "passwordFromEnv", "listName", "listLength",
    "activationListLength", "enableTLS", "unsafeSsl", "databaseIndex",
}


def dropped(given, kept, path=""):
    """Paths present in `given` but missing or different in `kept`."""
    if isinstance(given, dict) and isinstance(kept, dict):
        for key, value in given.items():
            if key not in kept:
                yield f"{path}.{key}"
            else:
                yield from dropped(value, kept[key], f"{path}.{key}")
    elif isinstance(given, list) and isinstance(kept, list) and len(given) == len(kept):
        for i, (a, b) in enumerate(zip(given, kept)):
            yield from dropped(a, b, f"{path}[{i}]")
    elif given != kept:
        yield f"{path} (given {given!r}, read as {kept!r})"


def check_scaled_object(doc):
    try:
        model = ScaledObject.model_validate(doc)
    except Exception as e:  # pydantic's ValidationError, one line per field
        return [" ".join(str(e).split())]
    kept = model.model_dump(by_alias=True, exclude_unset=True, mode="json")
    problems = [f"unknown or mistyped field {p}" for p in dropped(doc, kept)]
    for i, trigger in enumerate(doc.get("spec", {}).get("triggers", [])):
        if trigger.get("type") == "redis":
            meta = trigger.get("metadata", {})
            problems += [f"triggers[{i}]: the redis scaler has no parameter {k!r}" for k in meta if k not in REDIS_SCALER_KEYS]
            if "listName" not in meta:
                problems.append(f"triggers[{i}]: the redis scaler needs listName")
            if not ({"address", "addressFromEnv"} & meta.keys() or {"host", "port"} <= meta.keys()):
                problems.append(f"triggers[{i}]: the redis scaler needs address (or host and port)")
    return problems


def check_builtin(doc, versions):
    problems = []
    for version in versions:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            path = ".".join(str(p) for p in e.path)
            problems.append(f"Kubernetes {e.version}: {path}: {e.message}")
        except kubernetes_validate.SchemaNotFoundError as e:
            problems.append(e.message)
    return problems


def check_kustomization(directory, doc, manifests):
    problems = []
    listed = doc.get("resources", [])
    for resource in listed:
        if not (directory / resource).is_file():
            problems.append(f"resources lists {resource}, which does not exist")
    for manifest in manifests:
        if manifest.name not in listed:
            problems.append(f"{manifest.name} is not listed under resources")
    return problems


def main():
    directory, versions = pathlib.Path(sys.argv[1]), sys.argv[2:]
    manifests = sorted(p for p in directory.glob("*.yaml") if p.name != "kustomization.yaml")
    failures = 0
    kustomization = directory / "kustomization.yaml"
    files = manifests + ([kustomization] if kustomization.is_file() else [])
    if not kustomization.is_file():
        print(f"ERROR {directory}: no kustomization.yaml")
        failures += 1
    for path in files:
        try:
            docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
        except yaml.YAMLError as e:
            print(f"ERROR {path.name}: not YAML: {' '.join(str(e).split())}")
            failures += 1
            continue
        for doc in docs:
            kind = doc.get("kind", "?")
            resource = doc.get("metadata", {}).get("name")
            name = f"{path.name} {kind}" + (f"/{resource}" if resource else "")
            if path == kustomization:
                problems = check_kustomization(directory, doc, manifests)
            elif doc.get("apiVersion") == "keda.sh/v1alpha1" and kind == "ScaledObject":
                problems = check_scaled_object(doc)
            else:
                problems = check_builtin(doc, versions)
            for problem in problems:
                print(f"ERROR {name}: {problem}")
            failures += bool(problems)
            if not problems:
                print(f"ok    {name}")
    if failures:
        print(f"{failures} manifest(s) in {directory} failed validation")
        sys.exit(3)


if __name__ == "__main__":
    main()
