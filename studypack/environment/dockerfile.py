"""Render the study's Dockerfile: a pure function of its inputs, no side effects.

The text is shown to the user before anything is built. The build context is the
bundle's ``data/`` folder (``env/`` and ``study/`` inside it), so the same Dockerfile
rebuilds the image from an unpacked bundle years later:

    docker build --network none -f data/env/Dockerfile data/

Rules: the base is pinned by digest (``FROM name@sha256:…``), packages install
offline from the vendored files with hashes required, OCI labels say what the image
is, and the system packages the trace saw are listed with their exact versions.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from .. import __version__

DIGEST_RE = re.compile(r"^[^@\s]+@sha256:[0-9a-f]{64}$")
STUDY_DIR = "/study"


@dataclass(frozen=True)
class DockerfileInputs:
    base_image: str                     # "repo@sha256:…" (the pinned reference)
    study_name: str
    title: str = ""
    description: str = ""
    version: str = ""
    base_ref: str = ""                  # what the user asked for, e.g. "python:3.11-slim"
    python_version: str = ""
    system_packages: list[tuple[str, str]] = field(default_factory=list)  # (name, version)
    # The environment kinds' lines, in registry order (studypack.environment.kinds).
    install_steps: list[str] = field(default_factory=list)
    command: list[str] = field(default_factory=list)
    workdir: str = "."
    studypack_version: str = __version__


def _quote(value: str) -> str:
    """A double-quoted Dockerfile value (JSON string escaping is what Docker accepts)."""
    return json.dumps(" ".join(value.split()))


def render_dockerfile(inputs: DockerfileInputs) -> str:
    if not DIGEST_RE.match(inputs.base_image):
        raise ValueError(f"the base image must be pinned by digest (name@sha256:…), "
                         f"not {inputs.base_image!r}")
    lines = [
        f"# Rebuilds the environment of the study {inputs.study_name!r}, offline.",
        f"# Written by studypack {inputs.studypack_version}. Build it from the bundle's data/:",
        "#   docker build --network none -f env/Dockerfile -t "
        f"{_image_name(inputs.study_name)} .",
    ]
    if inputs.base_ref and inputs.base_ref != inputs.base_image:
        lines.append(f"# Base image: {inputs.base_ref}, pinned by digest.")
    if inputs.system_packages:
        lines.append("# System packages the traced run used (dpkg, exact versions):")
        lines.extend(f"#   {name}={version}" for name, version in inputs.system_packages)
    lines += ["", f"FROM {inputs.base_image}", ""]
    labels = {
        "org.opencontainers.image.title": inputs.title or inputs.study_name,
        "org.opencontainers.image.description": inputs.description,
        "org.opencontainers.image.version": inputs.version,
        "org.opencontainers.image.base.name": inputs.base_ref or inputs.base_image.split("@")[0],
        "org.opencontainers.image.base.digest": inputs.base_image.split("@", 1)[1],
        "io.studypack.version": inputs.studypack_version,
        "io.studypack.study": inputs.study_name,
    }
    if inputs.system_packages:
        labels["io.studypack.system-packages"] = " ".join(
            f"{name}={version}" for name, version in inputs.system_packages)
    label_lines = [f"{key}={_quote(value)}" for key, value in labels.items() if value]
    lines.append("LABEL " + " \\\n      ".join(label_lines))
    lines.append("")
    steps = list(inputs.install_steps)
    while steps and not steps[-1]:
        steps.pop()
    lines += steps or ["# Nothing to install: the base image is the environment."]
    lines += ["", f"WORKDIR {STUDY_DIR}", f"COPY study/ {STUDY_DIR}/"]
    if inputs.workdir and inputs.workdir not in (".", ""):
        lines.append(f"WORKDIR {STUDY_DIR}/{inputs.workdir.strip('/')}")
    if inputs.command:
        lines.append(f"CMD {json.dumps(inputs.command)}")
    return "\n".join(lines) + "\n"


def _image_name(study_name: str) -> str:
    return "studypack/" + re.sub(r"[^a-z0-9._-]+", "-", study_name.lower()).strip("-._")


def image_tag(study_name: str, version: str = "") -> str:
    """The tag the built image gets locally, e.g. ``studypack/heat-diffusion:1.0``."""
    tag = re.sub(r"[^A-Za-z0-9._-]+", "-", version or "latest")[:128]
    return f"{_image_name(study_name)}:{tag}"
