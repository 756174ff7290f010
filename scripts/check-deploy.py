#!/usr/bin/env python3
"""Check the recipes under deploy/ against the real pgharbor and the API schemas.

    python scripts/check-deploy.py PGHARBOR_BINARY

* Kubernetes manifests (deploy/kubernetes/*.yaml): every document validates
  against the Kubernetes API schemas (kubernetes-validate's bundled, offline
  copies; strict: unknown fields are errors).
* Compose files (deploy/compose/*.yaml): they parse, every service has an
  image, and named volumes and secrets are declared.
* Every pgharbor command line in them (a pgharbor container's command/args,
  an exec probe starting with `pgharbor`) parses: it is run with `--help`
  appended, which clap only reaches after accepting every flag and value
  before it (an unknown flag or a bad value exits 2 naming it).
* A manifest with a `# pgharbor-command: …` line is exactly what that
  command prints (the --print-cronjob output).

Prints one line per problem and exits 1 when there is any.
"""

import shlex
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import yaml

KUBERNETES_VERSION = "1.30.0"
REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"
COMMAND_MARK = "# pgharbor-command: "


def is_pgharbor_image(image):
    return image.startswith("pgharbor:") or image.startswith("${PGHARBOR_IMAGE")


def check_command_line(binary, args, where):
    """Problems with `pgharbor ARGS` (as a list of strings), else []."""
    run = subprocess.run([binary, *args, "--help"], capture_output=True, text=True)
    if run.returncode != 0:
        return [f"{where}: `pgharbor {shlex.join(args)}` does not parse: {run.stderr.strip()}"]
    return []


def pod_specs(doc):
    """The pod specs of a workload document (Deployment, Job, CronJob, Pod…)."""
    spec = doc.get("spec") or {}
    if doc.get("kind") == "Pod":
        return [spec]
    if doc.get("kind") == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    template = spec.get("template")
    return [template["spec"]] if template else []


def kubernetes_command_lines(doc):
    """(where, args) of each pgharbor command line in a document."""
    found = []
    for pod in pod_specs(doc):
        for container in pod.get("initContainers", []) + pod.get("containers", []):
            name = f"{doc['kind']}/{doc['metadata']['name']} container {container['name']}"
            if is_pgharbor_image(container.get("image", "")):
                found.append((name, list(container.get("command", [])[1:]) + list(container.get("args", []))))
            for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
                command = ((container.get(probe) or {}).get("exec") or {}).get("command", [])
                if command[:1] == ["pgharbor"]:
                    found.append((f"{name} {probe}", command[1:]))
    return found


def check_kubernetes(path, binary):
    problems = []
    text = path.read_text()
    for doc in yaml.safe_load_all(text):
        if doc is None:
            continue
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            problems.append(f"{path.name}: {doc.get('kind')}/{doc['metadata'].get('name')}: {error.message} at {list(error.path)}")
        except kubernetes_validate.SchemaNotFoundError as error:
            problems.append(f"{path.name}: no Kubernetes {KUBERNETES_VERSION} schema for {error}")
        for where, args in kubernetes_command_lines(doc):
            problems += check_command_line(binary, args, f"{path.name}: {where}")
    problems += check_generated(path, text, binary)
    return problems


def check_generated(path, text, binary):
    """A manifest marked with the command that prints it equals its output."""
    marks = [line[len(COMMAND_MARK):] for line in text.splitlines() if line.startswith(COMMAND_MARK)]
    if not marks:
        return []
    run = subprocess.run([binary, *shlex.split(marks[0])], capture_output=True, text=True)
    if run.returncode != 0:
        return [f"{path.name}: `pgharbor {marks[0]}` failed: {run.stderr.strip()}"]
    body = "".join(line for line in text.splitlines(keepends=True) if not line.startswith("#"))
    if body != run.stdout:
        return [f"{path.name}: differs from what `pgharbor {marks[0]}` prints now; regenerate it"]
    return []


def compose_command(service):
    command = service.get("command", [])
    return shlex.split(command) if isinstance(command, str) else [str(arg) for arg in command]


def check_compose(path, binary):
    problems = []
    doc = yaml.safe_load(path.read_text())
    services = doc.get("services")
    if not isinstance(services, dict) or not services:
        return [f"{path.name}: no services"]
    volumes = set(doc.get("volumes") or {})
    secrets = set(doc.get("secrets") or {})
    for name, service in services.items():
        if "image" not in service:
            problems.append(f"{path.name}: service {name} has no image")
        for mount in service.get("volumes", []):
            source = mount.split(":")[0]
            if not source.startswith((".", "/")) and source not in volumes:
                problems.append(f"{path.name}: service {name} mounts undeclared volume {source}")
        for secret in service.get("secrets", []):
            if secret not in secrets:
                problems.append(f"{path.name}: service {name} uses undeclared secret {secret}")
        for dependency in service.get("depends_on", {}):
            if dependency not in services:
                problems.append(f"{path.name}: service {name} depends on unknown service {dependency}")
        if is_pgharbor_image(service.get("image", "")):
            problems += check_command_line(binary, compose_command(service), f"{path.name}: service {name}")
    return problems


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: check-deploy.py PGHARBOR_BINARY")
    binary = sys.argv[1]
    kubernetes = sorted((DEPLOY / "kubernetes").glob("*.yaml"))
    compose = sorted((DEPLOY / "compose").glob("*.yaml"))
    if not kubernetes or not compose:
        sys.exit(f"check-deploy: no manifests or Compose files under {DEPLOY}")
    problems = []
    for path in kubernetes:
        problems += check_kubernetes(path, binary)
    for path in compose:
        problems += check_compose(path, binary)
    for problem in problems:
        print(problem)
    checked = ", ".join(p.relative_to(REPO).as_posix() for p in kubernetes + compose)
    print(f"check-deploy: {len(problems)} problem(s) in {checked}")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
