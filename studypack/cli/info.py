"""studypack info BUNDLE: what a bundle holds, read from its first bytes only."""

from __future__ import annotations

import json

from ..bundle.reader import read_info
from ..fsutil import human_size
from ._console import out_console, shown


def register(sub) -> None:
    p = sub.add_parser(
        "info", help="show what a bundle holds (instant, no decompression of the payload)",
        description="Print the study's name, title, authors, runs, file counts, sizes and the "
                    "format version. Reads only the metadata at the start of the bundle.")
    p.add_argument("bundle", metavar="BUNDLE")
    p.add_argument("--json", action="store_true", help="print the metadata as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    info = read_info(args.bundle)
    m = info.metadata
    if args.json:
        out_console.print_json(json.dumps({"bundle": str(info.path), "bag": info.bag_name,
                                           "compressed_size": info.compressed_size, **m}))
        return 0
    s = m["study"]
    p = out_console.print
    p(f"[bold]{shown(s['title'])}[/]  ({shown(s['name'])})")
    if s.get("authors"):
        p("Authors:   " + "; ".join(
            shown(a["name"]) + (f" (ORCID {shown(a['orcid'])})" if a.get("orcid") else "")
            for a in s["authors"]))
    if s.get("description"):
        p(f"About:     {shown(s['description'], lines=True)}")
    p(f"License:   {shown(s.get('license') or '—')}"
      + (f"   DOI: {shown(s['doi'])}" if s.get("doi") else ""))
    for run in m.get("runs", []):
        host = run.get("host", {})
        p(f"Run {run['index']}:     {shown(' '.join(run['command']))}  → exit "
          f"{run['exit_code']}, {run['duration_s']:.1f} s, {shown(run['started_at'])} on "
          f"{shown(host.get('os', '?'))} ({shown(host.get('architecture', '?'))})")
    c = m.get("counts", {})
    for role in ("code", "data", "outputs", "rootfs", "env", "image"):
        if c.get(role, {}).get("files"):
            p(f"  {role:<8} {c[role]['files']:>6} files  {human_size(c[role]['bytes']):>10}")
    env = m.get("environment") or {}
    if env:
        p(f"Environment: {shown(env.get('kind', '?'))}"
          + (f", Python {shown(env['python_version'])}" if env.get("python_version") else ""))
    p(f"Bundle:    {human_size(info.compressed_size)} compressed, "
      f"{human_size(c.get('payload', {}).get('bytes', 0))} payload; "
      f"format version {info.format_version}, studypack {shown(m.get('studypack_version'))}")
    if m.get("secrets_dropped"):
        p("Dropped as secrets: " + shown(", ".join(m["secrets_dropped"])))
    return 0
