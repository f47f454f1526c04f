"""studypack init DIR: write a first studypack.toml by looking at the folder."""

from __future__ import annotations

from pathlib import Path

from ..spec import SPEC_NAME, detect_spec, spec_to_toml, write_spec
from ._console import err_console, out_console


def register(sub) -> None:
    p = sub.add_parser(
        "init", help="write a studypack.toml for a study folder",
        description="Look at a study folder (scripts, data/, results/, README, git, venv) and "
                    "write a first studypack.toml describing it. Edit it, then run "
                    "`studypack create`.")
    p.add_argument("folder", nargs="?", default=".", help="the study folder (default: here)")
    p.add_argument("--force", action="store_true", help="replace an existing studypack.toml")
    p.add_argument("--print", dest="print_only", action="store_true",
                   help="print the detected spec instead of writing it")
    p.set_defaults(func=run)


def run(args) -> int:
    spec = detect_spec(args.folder)
    if args.print_only:
        out_console.print(spec_to_toml(spec), markup=False, end="")
        return 0
    target = write_spec(spec, Path(args.folder) / SPEC_NAME, overwrite=args.force)
    err_console.print(f"Wrote {target}. Check the [run] command, [data] and [outputs] paths, "
                      "then run: studypack create " + str(Path(args.folder)))
    return 0
