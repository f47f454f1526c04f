"""The replay report, three ways: a terminal table (rich), a JSON document, and a
self-contained HTML page (inline CSS, no script, no external asset) to keep or send.

All three read the same dictionary, :func:`report_dict`, so they never disagree.
"""

from __future__ import annotations

import html
import json
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from .. import __version__
from ..safetext import printable
from .causes import cause_counts
from .compare import DIFFERS, IGNORED, MISSING, NEW, PRODUCED, REPRODUCED, summary

STATUS_STYLE = {
    REPRODUCED: "green", DIFFERS: "red", MISSING: "red", NEW: "yellow",
    IGNORED: "dim", PRODUCED: "cyan",
}
STATUS_COLOUR = {  # HTML
    REPRODUCED: "#1a7f37", DIFFERS: "#cf222e", MISSING: "#cf222e", NEW: "#9a6700",
    IGNORED: "#6e7781", PRODUCED: "#0969da",
}


def report_dict(result) -> dict[str, Any]:
    """The JSON form of a :class:`studypack.replay.ReplayResult`.

    ``{"mode", "reproduced", "outputs": [{"path", "status", "cause", "details", ...}],
    "causes", "environment_diff": [{"what", "original", "replay"}] (null when every output
    reproduced: nothing to explain, the environment was not examined), "hints", ...}``
    """
    outputs = [o.to_dict() for o in result.outputs]
    return {
        "mode": result.mode,
        "mode_reason": result.mode_reason,
        "reproduced": bool(result.reproduced),
        "failed_run": result.failed_run.index if result.failed_run else None,
        "compared": result.compared,
        "bundle": result.bundle,
        "study": result.study,
        "summary": {k: v for k, v in summary(result.outputs).items() if v},
        "causes": cause_counts(result.outputs),
        "replays": result.replays,
        "outputs": outputs,
        "environment_diff": (None if result.environment_diff is None
                             else list(result.environment_diff)),
        "hints": list(result.hints),
        "source_date_epoch": result.source_date_epoch,
        "network": result.network,
        "runs": [r.to_dict() for r in result.runs],
        "notes": list(result.notes),
        "workdir": str(result.workdir) if result.workdir else None,
        "studypack_version": __version__,
    }


def failure_dict(error, *, mode: str, bundle: str) -> dict[str, Any]:
    """The JSON document of a replay that could not be done at all."""
    return {"mode": mode, "reproduced": False, "reason": error.message, "hint": error.hint,
            "exit_code": error.exit_code, "bundle": bundle, "outputs": [],
            "studypack_version": __version__}


def headline(doc: dict[str, Any]) -> str:
    counts = doc["summary"]
    total = len(doc["outputs"])
    if not doc["compared"]:
        return f"Replayed with your own inputs or arguments: {total} output(s) written, not compared."
    compared = total - counts.get(IGNORED, 0) - counts.get(NEW, 0)
    done = counts.get(REPRODUCED, 0)
    extra = [f"{counts[s]} {s}" for s in (IGNORED, NEW) if counts.get(s)]
    tail = f" ({', '.join(extra)})" if extra else ""
    if doc["reproduced"]:
        return f"Reproduced {done}/{compared} outputs{tail}."
    causes = doc.get("causes") or {}
    why = "; ".join(f"{n} {cause}" for cause, n in causes.items())
    why = f" — {why}" if why else ""
    if doc.get("failed_run"):
        return (f"NOT reproduced: run {doc['failed_run']} failed; {done}/{compared} outputs "
                f"reproduced{tail}{why}.")
    return f"NOT reproduced: {done}/{compared} outputs reproduced{tail}{why}."


def status_text(out: dict[str, Any]) -> str:
    return f"{out['status']} ({out['cause']})" if out.get("cause") else out["status"]


def render_json(result) -> str:
    return json.dumps(report_dict(result), indent=2, ensure_ascii=False)


def _t(text) -> str:
    """Text from the bundle, for rich: control characters and markup escaped."""
    return escape(printable(text))


def render_terminal(result, console: Console) -> None:
    doc = report_dict(result)
    console.print(f"[bold]{_t(doc['study'] or doc['bundle'])}[/bold] replayed in mode "
                  f"[bold]{_t(doc['mode'])}[/bold] — {_t(doc['mode_reason'])}")
    for run in doc["runs"]:
        console.print(f"  run {run['index']}: {_t(' '.join(run['command']))}  "
                      f"→ exit {run['exit_code']} in {run['duration_s']:.1f} s")
    for note in doc["notes"]:
        console.print(f"  [yellow]note:[/yellow] {_t(note)}")
    table = Table(show_lines=False, header_style="bold")
    table.add_column("output", overflow="fold")   # never cut: two rows must not look alike
    table.add_column("status")
    table.add_column("details", overflow="fold")
    for out in doc["outputs"]:
        style = STATUS_STYLE.get(out["status"], "")
        details = out["details"][:6]
        if len(out["details"]) > 6:
            details.append(f"… {len(out['details']) - 6} more")
        table.add_row(Text(printable(out["path"])), Text(status_text(out), style=style),
                      Text(printable("\n".join(details), keep_newlines=True)))
    if doc["outputs"]:
        console.print(table)
    else:
        console.print("  (no output files were found in the declared output paths)")
    if doc["environment_diff"] and not doc["reproduced"]:
        changes = Table(title="What changed since the original run", header_style="bold")
        for column in ("what", "original", "replay"):
            changes.add_column(column, overflow="fold")
        for row in doc["environment_diff"]:
            changes.add_row(*(Text(printable(str(row[k]))) for k in ("what", "original", "replay")))
        console.print(changes)
    for hint in doc["hints"] if not doc["reproduced"] else []:
        console.print(f"  [yellow]hint:[/yellow] {_t(hint)}")
    colour = "green" if doc["reproduced"] else ("cyan" if not doc["compared"] else "red")
    console.print(f"[bold {colour}]{headline(doc)}[/bold {colour}]")


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em auto;max-width:70em;
color:#1f2328;padding:0 1em}
h1{font-size:1.4em;margin-bottom:.2em}.sub{color:#57606a;margin-top:0}
.verdict{font-size:1.2em;font-weight:600;padding:.6em 1em;border-radius:6px;margin:1em 0}
.ok{background:#dafbe1;color:#1a7f37}.bad{background:#ffebe9;color:#cf222e}
.info{background:#ddf4ff;color:#0969da}
table{border-collapse:collapse;width:100%;margin:1em 0}
th,td{border-bottom:1px solid #d0d7de;padding:.4em .6em;text-align:left;vertical-align:top}
th{background:#f6f8fa}td.path,code{font-family:ui-monospace,SFMono-Regular,Menlo,monospace}
.status{font-weight:600}ul{margin:0;padding-left:1.2em}
pre{background:#f6f8fa;padding:.6em;overflow:auto;max-height:20em}
footer{color:#57606a;font-size:.9em;margin-top:2em}
.pictures{display:flex;gap:.6em;flex-wrap:wrap;margin-top:.5em}
figure{margin:0}figure img{max-width:20em;border:1px solid #d0d7de}
figcaption{color:#57606a;font-size:.85em}
"""


def _pictures(entry: dict | None) -> str:
    if not entry:
        return ""
    cells = "".join(f'<figure><img alt="{name} image" src="{entry[name]}">'
                    f"<figcaption>{caption}</figcaption></figure>"
                    for name, caption in (("original", "original run"), ("replay", "replay"),
                                          ("difference", "changed pixels in red"))
                    if name in entry)
    return f'<div class="pictures">{cells}</div>'


def _changes(doc: dict[str, Any], e) -> str:
    if not doc["environment_diff"]:
        return ""
    rows = "".join(f"<tr><td>{e(r['what'])}</td><td>{e(r['original'])}</td>"
                   f"<td>{e(r['replay'])}</td></tr>" for r in doc["environment_diff"])
    return ("<h2>What changed since the original run</h2><table><thead><tr><th>what</th>"
            f"<th>original run</th><th>replay</th></tr></thead><tbody>{rows}</tbody></table>")


def render_html(result) -> str:
    doc = report_dict(result)
    pictures = getattr(result, "pictures", None) or {}

    def e(text) -> str:   # names and messages come from the bundle: escaped twice over
        return html.escape(printable(text, keep_newlines=True))
    verdict_class = "ok" if doc["reproduced"] else ("info" if not doc["compared"] else "bad")
    rows = []
    for out in doc["outputs"]:
        colour = STATUS_COLOUR.get(out["status"], "#1f2328")
        details = "".join(f"<li>{e(d)}</li>" for d in out["details"])
        rows.append(f'<tr><td class="path">{e(out["path"])}</td>'
                    f'<td class="status" style="color:{colour}">{e(status_text(out))}</td>'
                    f"<td><ul>{details}</ul>{_pictures(pictures.get(out['path']))}</td></tr>")
    runs = []
    for run in doc["runs"]:
        runs.append(f"<li><code>{e(' '.join(run['command']))}</code> — exit "
                    f"{run['exit_code']} in {run['duration_s']:.1f} s"
                    + (f"<pre>{e(run['stderr_tail'])}</pre>" if run.get("stderr_tail") else "")
                    + "</li>")
    notes = "".join(f"<li>{e(n)}</li>" for n in doc["notes"])
    hints = "".join(f"<li>{e(h)}</li>" for h in doc["hints"])
    title = doc["study"] or doc["bundle"] or "study"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Replay of {e(title)}</title>
<style>{_CSS}</style></head>
<body>
<h1>Replay of {e(title)}</h1>
<p class="sub">bundle <code>{e(doc['bundle'] or '')}</code> · mode <b>{e(doc['mode'])}</b> —
{e(doc['mode_reason'])}</p>
<div class="verdict {verdict_class}">{e(headline(doc))}</div>
<table><thead><tr><th>output</th><th>status</th><th>details</th></tr></thead>
<tbody>{''.join(rows) or '<tr><td colspan="3">no output files</td></tr>'}</tbody></table>
{_changes(doc, e)}
{f'<h2>Hints from the trace</h2><ul>{hints}</ul>' if hints else ''}
<h2>Runs</h2><ol>{''.join(runs)}</ol>
{f'<h2>Notes</h2><ul>{notes}</ul>' if notes else ''}
<footer>Written by studypack {e(__version__)}.</footer>
</body></html>
"""
