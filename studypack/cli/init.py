"""studypack init DIR: write a first studypack.toml by looking at the folder."""

from __future__ import annotations

import sys
from pathlib import Path

from ..discover import discover_study
from ..spec import SPEC_NAME, spec_to_toml, write_spec
from ._console import err_console, out_console


def register(sub) -> None:
    p = sub.add_parser(
        "init", help="write a studypack.toml for a study folder",
        description="Look at a study folder (CITATION.cff, codemeta.json, LICENSE, README, "
                    "run.sh/Makefile/Snakefile/main script, data/, results/, venv) and write "
                    "a first studypack.toml describing it. What the folder does not say is "
                    "asked (on a terminal) or listed for you to fill in. Then run "
                    "`studypack create`.")
    p.add_argument("folder", nargs="?", default=".", help="the study folder (default: here)")
    p.add_argument("--force", action="store_true", help="replace an existing studypack.toml")
    p.add_argument("--print", dest="print_only", action="store_true",
                   help="print the detected spec instead of writing it")
    p.set_defaults(func=run)


def run(args) -> int:
    found = discover_study(args.folder)
    spec = found.spec
    if args.print_only:
        out_console.print(spec_to_toml(spec), markup=False, end="")
        return 0
    target = Path(args.folder) / SPEC_NAME
    if target.exists() and not args.force:   # before asking anything
        write_spec(spec, target, overwrite=False)
    open_questions = list(found.questions)
    if sys.stdin.isatty() and not spec.runs[0].command:
        answer = input("Which command runs the study (e.g. python analysis.py)? ").strip()
        if answer:
            import shlex
            spec.runs[0].command = shlex.split(answer)
            open_questions = [q for q in open_questions if "[run] command" not in q]
    for what, source in sorted(found.found.items()):
        err_console.print(f"  · {what} from {source}", markup=False)
    write_spec(spec, target, overwrite=args.force)
    for question in open_questions:
        err_console.print(f"  ? {question}", markup=False)
    err_console.print(f"Wrote {target}. Check the [run] command, the [data] and [outputs] "
                      "paths, then run: studypack create " + str(Path(args.folder)),
                      markup=False)
    return 0
