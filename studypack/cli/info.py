"""studypack info BUNDLE: what a bundle holds, read from its first bytes only."""

from __future__ import annotations

import json

from ..bundle.reader import read_info
from ..fsutil import human_size
from ._console import out_console


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
    p(f"[bold]{s['title']}[/]  ({s['name']})")
    if s.get("authors"):
        p("Authors:   " + "; ".join(
            a["name"] + (f" (ORCID {a['orcid']})" if a.get("orcid") else "") for a in s["authors"]))
    if s.get("description"):
        p(f"About:     {s['description']}", markup=False)
    p(f"License:   {s.get('license') or '—'}" + (f"   DOI: {s['doi']}" if s.get("doi") else ""))
    for run in m.get("runs", []):
        host = run.get("host", {})
        p(f"Run {run['index']}:     {' '.join(run['command'])}  → exit {run['exit_code']}, "
          f"{run['duration_s']:.1f} s, {run['started_at']} on {host.get('os', '?')} "
          f"({host.get('architecture', '?')})", markup=False)
    c = m.get("counts", {})
    for role in ("code", "data", "outputs", "rootfs", "env", "image"):
        if c.get(role, {}).get("files"):
            p(f"  {role:<8} {c[role]['files']:>6} files  {human_size(c[role]['bytes']):>10}")
    env = m.get("environment") or {}
    if env:
        p(f"Environment: {env.get('kind', '?')}"
          + (f", Python {env['python_version']}" if env.get("python_version") else ""))
    p(f"Bundle:    {human_size(info.compressed_size)} compressed, "
      f"{human_size(c.get('payload', {}).get('bytes', 0))} payload; "
      f"format version {info.format_version}, studypack {m.get('studypack_version')}")
    if m.get("secrets_dropped"):
        p("Dropped as secrets: " + ", ".join(m["secrets_dropped"]))
    return 0
