"""The self-describing parts of a bundle: studypack.json, bag-info labels, the RO-Crate
(Process Run Crate profile), REPLAY.md and replay.sh. Pure functions of their inputs."""

from __future__ import annotations

import json
import re
import shlex

from .. import __version__
from ..spec import StudySpec
from . import format as fmt

RO_CRATE_CONTEXT = "https://w3id.org/ro/crate/1.1/context"
PROFILES = [
    {"@id": "https://w3id.org/ro/crate/1.1"},
    {"@id": "https://w3id.org/ro/wfrun/process/0.5"},
]
SPDX = "https://spdx.org/licenses/"


def orcid_url(orcid: str) -> str:
    return f"https://orcid.org/{orcid}" if orcid else ""


def metadata_json(spec: StudySpec, *, runs: list[dict], inputs: list[str], outputs: list[str],
                  counts: dict, environment: dict, secrets_dropped: list[str],
                  created: str, warnings: list[str]) -> dict:
    """The document ``info`` reads: everything a reader wants without the payload."""
    s = spec.study
    return {
        "format": fmt.FORMAT_NAME,
        "format_version": fmt.FORMAT_VERSION,
        "studypack_version": __version__,
        "created": created,
        "study": {
            "name": s.name, "title": s.title, "description": s.description,
            "license": s.license, "keywords": s.keywords, "version": s.version,
            "doi": s.doi, "related": s.related, "upload_type": s.upload_type,
            "communities": s.communities, "publication_date": s.publication_date,
            "authors": [{"name": a.name or a.display_name, "given": a.given, "family": a.family,
                         "orcid": a.orcid, "affiliation": a.affiliation} for a in s.authors],
        },
        "runs": runs,
        "inputs": inputs,
        "outputs": outputs,
        "data_references": [{"path": r.path, "url": r.url, "size": r.size, "sha256": r.sha256}
                            for r in spec.data_references],
        "compare": spec.to_dict().get("compare", {}),
        "environment": environment,
        "counts": counts,
        "secrets_dropped": secrets_dropped,
        "warnings": warnings,
        "layout": {"study": fmt.STUDY_DIR, "outputs": fmt.OUTPUTS_DIR, "runs": fmt.RUNS_DIR,
                   "trace": fmt.TRACE_DIR, "rootfs": fmt.ROOTFS_DIR, "env": fmt.ENV_DIR,
                   "image": fmt.IMAGE_TAR},
    }


def bag_info_labels(spec: StudySpec) -> dict[str, str]:
    s = spec.study
    labels = {
        "Bag-Software-Agent": f"studypack {__version__}",
        "StudyPack-Format-Version": str(fmt.FORMAT_VERSION),
        "External-Description": s.title,
    }
    if s.doi:
        labels["External-Identifier"] = f"https://doi.org/{s.doi}"
    if s.authors:
        labels["Contact-Name"] = s.authors[0].display_name
    return labels


# Programs whose home page is known: a run's instrument is the program it ran (argv[0]),
# identified by that page (Process Run Crate: an Application has a url, an absolute id).
# (name, home page, the Debian package whose version is the program's)
KNOWN_PROGRAMS = {
    "python": ("Python", "https://www.python.org/", None),
    "Rscript": ("R", "https://www.r-project.org/", "r-base-core"),
    "R": ("R", "https://www.r-project.org/", "r-base-core"),
    "bash": ("GNU Bash", "https://www.gnu.org/software/bash/", "bash"),
    "sh": ("Debian Almquist shell", "https://git.kernel.org/pub/scm/utils/dash/dash.git",
           "dash"),
    "make": ("GNU Make", "https://www.gnu.org/software/make/", "make"),
    "julia": ("Julia", "https://julialang.org/", "julia"),
    "node": ("Node.js", "https://nodejs.org/", "nodejs"),
    "perl": ("Perl", "https://www.perl.org/", "perl"),
    "java": ("Java", "https://openjdk.org/", None),
    "snakemake": ("Snakemake", "https://snakemake.github.io/", "snakemake"),
    "nextflow": ("Nextflow", "https://www.nextflow.io/", None),
}
ZENODO = {"@id": "https://zenodo.org/", "@type": "Organization", "name": "Zenodo",
          "url": "https://zenodo.org/"}


def _program(command: list[str], environment: dict | None) -> dict:
    """The SoftwareApplication entity of the program a command runs."""
    name = (command[0] if command else "").rsplit("/", 1)[-1]
    base = name.rstrip("0123456789.") or name          # python3.11 -> python
    known = KNOWN_PROGRAMS.get(base)
    if known is None:
        return {"@id": f"#program-{name or 'unknown'}", "@type": "SoftwareApplication",
                "name": name or "(unknown)"}
    label, url, package = known
    app = {"@id": url, "@type": "SoftwareApplication", "name": label, "url": url}
    environment = environment or {}
    if base == "python":
        version = environment.get("python_version")
    else:   # the version of its Debian package, when the environment lists it
        version = next((p.get("version") for p in environment.get("system_packages") or []
                        if isinstance(p, dict) and p.get("name") == package), None)
    if version:
        app["softwareVersion"] = str(version)
    return app


def _iso(stamp: str) -> str:
    """ISO 8601 with a numeric offset ("…+00:00"), the form the profile's checks read."""
    return stamp[:-1] + "+00:00" if stamp.endswith("Z") else stamp


def _one(items: list):
    """JSON-LD: a single value is written as itself, not a one-element list."""
    return items[0] if len(items) == 1 else items


# The MIME grammar roc-validator accepts (ro-crate-1.1_27.1): type/subtype, one +suffix.
_MIME = re.compile(r"^\w*/\w[\w.-]*(?:\+\w[\w.-]*)?$")


def _encoding_format(name: str) -> str:
    import mimetypes

    kind, _ = mimetypes.guess_type(name, strict=False)
    if kind is None or not _MIME.match(kind):   # text/x-c++src (.cpp) and the like
        kind = "text/plain" if name.endswith((".txt", ".md", ".log")) or \
            (kind or "").startswith("text/") else None
    return kind or "application/octet-stream"


def ro_crate(spec: StudySpec, *, runs: list[dict], inputs: list[str], outputs: list[str],
             created: str, environment: dict | None = None) -> dict:
    """An RO-Crate whose root is the bag's data/ folder; each run is a CreateAction with
    the program it ran as instrument, the inputs as object and the outputs as result.
    It passes roc-validator's Process Run Crate profile at REQUIRED and RECOMMENDED
    (docs/format.md lists what only the study's own facts can satisfy)."""
    s = spec.study
    people, organisations = [], {}
    for i, a in enumerate(s.authors):
        person = {"@id": orcid_url(a.orcid) or f"#author-{i + 1}", "@type": "Person",
                  "name": a.display_name}
        if a.family_given():
            person["familyName"], person["givenName"] = a.family_given()
            person = {k: v for k, v in person.items() if v}
        if a.affiliation:
            url = getattr(a, "affiliation_url", "")
            org = organisations.setdefault(a.affiliation, {
                "@id": url or f"#organization-{len(organisations) + 1}",
                "@type": "Organization", "name": a.affiliation, **({"url": url} if url else {})})
            person["affiliation"] = {"@id": org["@id"]}
        people.append(person)
    files = [{"@id": f"study/{p}", "@type": "File", "name": p,
              "encodingFormat": _encoding_format(p)} for p in inputs]
    files += [{"@id": f"outputs/{p}", "@type": "File", "name": p,
               "encodingFormat": _encoding_format(p)} for p in outputs]
    actions, programs = [], {}
    for run in runs:
        n = run["index"]
        command = " ".join(run["command"])
        program = _program(run["command"], environment)
        programs.setdefault(program["@id"], program)
        action = {
            "@id": f"#run-{n}", "@type": "CreateAction",
            "name": f"Run {n} of {s.title}: {command}",
            "description": f"The command `{command}` run in the study folder"
                           f"{' ' + run['workdir'] if run.get('workdir') not in (None, '', '.') else ''}"
                           f", traced by studypack; it exited with code {run['exit_code']}.",
            "instrument": {"@id": program["@id"]},
            "object": _one([{"@id": f"study/{p}"} for p in inputs]),
            "result": _one([{"@id": f"outputs/{p}"} for p in outputs]),
            "startTime": _iso(run["started_at"]), "endTime": _iso(run["finished_at"]),
            # a plain URL string: what the profile's check compares against
            "actionStatus": "http://schema.org/CompletedActionStatus"
                            if run["exit_code"] == 0 else "http://schema.org/FailedActionStatus",
        }
        if people:
            action["agent"] = {"@id": people[0]["@id"]}
        actions.append({k: v for k, v in action.items() if v not in ([], None)})
    publisher = ZENODO if s.doi and s.doi.startswith("10.5281/") else (
        next(iter(organisations.values()), None))
    root = {
        "@id": "./", "@type": "Dataset", "name": s.title, "description": s.description,
        "datePublished": _iso(created), "conformsTo": PROFILES,
        "license": {"@id": SPDX + s.license} if s.license else None,
        "keywords": ", ".join(s.keywords),
        "author": _one([{"@id": p["@id"]} for p in people]) if people else None,
        "publisher": {"@id": publisher["@id"]} if publisher else None,
        "hasPart": _one([{"@id": f["@id"]} for f in files]) if files else None,
        "mentions": _one([{"@id": a["@id"]} for a in actions]) if actions else None,
    }
    if s.doi:
        root["identifier"] = f"https://doi.org/{s.doi}"
    root = {k: v for k, v in root.items() if v not in (None, "", [])}
    graph = [
        {"@id": "ro-crate-metadata.json", "@type": "CreativeWork",
         "conformsTo": {"@id": "https://w3id.org/ro/crate/1.1"}, "about": {"@id": "./"}},
        root, *people, *organisations.values(), *files, *programs.values(), *actions,
        {"@id": PROFILES[0]["@id"], "@type": "CreativeWork", "name": "RO-Crate",
         "version": "1.1"},
        {"@id": PROFILES[1]["@id"], "@type": "CreativeWork", "name": "Process Run Crate",
         "version": "0.5"},
    ]
    if publisher is ZENODO:
        graph.append(ZENODO)
    if s.license:
        graph.append({"@id": SPDX + s.license, "@type": "CreativeWork", "name": s.license})
    return {"@context": RO_CRATE_CONTEXT, "@graph": graph}


def replay_md(spec: StudySpec, runs: list[dict], bag: str) -> str:
    s = spec.study
    commands = "\n".join(f"    {shlex.join(r['command'])}   # in {r['workdir']}" for r in runs)
    authors = ", ".join(a.display_name for a in s.authors) or "(not given)"
    return f"""# {s.title}

{s.description}

Authors: {authors}. License: {s.license}.

This folder is a studypack bundle: a BagIt bag (`bagit.txt`, `manifest-sha256.txt`)
with an RO-Crate (`data/ro-crate-metadata.json`). It holds the study's code and data
(`data/study/`), the outputs of the original run (`data/outputs/`), the run records
(`data/runs/`), a ReproZip trace of the run (`data/trace/`, and the traced files in
`data/rootfs/`) and, when it was captured, the software environment (`data/env/`:
lock file, vendored packages and a Dockerfile pinned by digest) and a saved container
image (`data/image/image.tar`).

## Replay with studypack

    studypack replay {bag}.studypack

## Replay without studypack

The command(s) of the original run:

{commands}

1. Check the bag: `sha256sum -c manifest-sha256.txt` in the bag folder
   (or `bagit.py --validate .`).
2. Run `bash data/replay.sh`. It loads the saved image (`docker load`) or builds one from
   `data/env/Dockerfile` when there is one, runs the command(s) with no network in a
   copy of `data/study/`, and compares the new outputs with `data/outputs/` using
   `cmp`. Without Docker, it runs the command(s) directly on this machine.
"""


REPLAY_SH = r"""#!/bin/sh
# Replays this study with plain docker (or directly, without docker) and compares the
# outputs with those of the original run. Written by studypack; needs only sh, cp, cmp.
set -eu
bag="$(cd "$(dirname "$0")/.." && pwd)"
work="${1:-$(mktemp -d)}"
mkdir -p "$work"
work="$(cd "$work" && pwd)"   # docker -v needs an absolute path
cp -R "$bag/data/study/." "$work/"
echo "Replaying in $work"
image=""
if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
  if [ -f "$bag/data/image/image.tar" ]; then
    image="$(docker load -q -i "$bag/data/image/image.tar" | sed -n 's/^Loaded image[^:]*: //p' | tail -n 1)"
  elif [ -f "$bag/data/env/Dockerfile" ]; then
    image="studypack-replay:@NAME@"
    docker build --network none -t "$image" -f "$bag/data/env/Dockerfile" "$bag/data"
  fi
fi
run() {  # workdir, then the command
  wd="$1"; shift
  if [ -n "$image" ]; then
    docker run --rm --network none --user "$(id -u):$(id -g)" -v "$work:/study" \
      -w "/study/$wd" "$image" "$@"
  else
    (cd "$work/$wd" && "$@")
  fi
}
@RUNS@
status=0
for f in $(cd "$bag/data/outputs" && find . -type f); do
  if cmp -s "$bag/data/outputs/$f" "$work/$f"; then echo "reproduced  $f"
  else echo "DIFFERS     $f"; status=3; fi
done
exit $status
"""


def replay_sh(spec: StudySpec, runs: list[dict]) -> str:
    lines = [f"run {shlex.quote(r['workdir'])} {shlex.join(r['command'])}" for r in runs]
    return REPLAY_SH.replace("@NAME@", spec.study.name.lower()).replace("@RUNS@", "\n".join(lines))


def dumps(doc: dict) -> bytes:
    """Indented JSON, each innermost object or list on one line (``{"@id": "x"}``).

    ``json.dumps(indent=2)`` would do it all in Python — a fifth of a second for the
    crate of a study of a few thousand files; here each innermost value is one call to
    the C encoder."""
    return (_indented(doc, "") + "\n").encode("utf-8")


def _indented(value, indent: str) -> str:
    nested = (dict, list)
    if isinstance(value, dict) and any(isinstance(v, nested) for v in value.values()):
        inner = indent + "  "
        return "{\n" + ",\n".join(
            f"{inner}{json.dumps(str(k), ensure_ascii=False)}: {_indented(v, inner)}"
            for k, v in value.items()) + f"\n{indent}}}"
    if isinstance(value, list) and any(isinstance(v, nested) for v in value):
        inner = indent + "  "
        return "[\n" + ",\n".join(inner + _indented(v, inner) for v in value) + \
            f"\n{indent}]"
    return json.dumps(value, ensure_ascii=False)
