"""``studypack replay``: re-run a received study and say, output by output, whether it
reproduced."""

from __future__ import annotations

import argparse
import json
import re
import tempfile
from pathlib import Path

from ..errors import EXIT_NOT_REPRODUCED, EXIT_OK, UsageError

DESCRIPTION = """\
Verify and unpack a bundle, run the recorded command(s) again in order, and compare
every output with the original run's: identical bytes, or equal within the tolerance
the study declares ([compare] in studypack.toml), PNG images by their pixels.

modes, in the order auto tries them:
{modes}

Runs have no network unless --network, and SOURCE_DATE_EPOCH set to the original run's
start. When an output differs, the study is replayed a second time to tell a
nondeterministic study from a changed environment (--repeat N sets the number of
replays; --repeat 1 skips the second); the report says what changed since the original
run. With --input or --arg the study is reused with your own data or arguments: its
outputs are listed, not compared.

exit status: 0 every output reproduced, 3 some output differs or is missing,
2 a mode that cannot run here or other bad input, other non-zero for errors (see
`studypack --help`). With --json, stdout is one JSON document in every case.
"""


class _ModesHelp(argparse.RawDescriptionHelpFormatter):
    """Fills in the modes table only when help is shown (it asks Docker and bwrap)."""

    def _format_text(self, text: str) -> str:
        if "{modes}" in text:
            from ..replay.registry import help_table
            text = text.replace("{modes}", help_table())
        return super()._format_text(text)

DOI_RE = re.compile(r"^(doi:|https?://(dx\.)?doi\.org/)?10\.\d{4,9}/\S+$", re.I)


def register(sub) -> None:
    p = sub.add_parser("replay", help="re-run a bundle and compare its outputs",
                       description=DESCRIPTION, formatter_class=_ModesHelp)
    p.add_argument("bundle", metavar="BUNDLE",
                   help="a .studypack file, an unpacked bundle folder, a DOI or an https URL")
    p.add_argument("--mode", metavar="MODE", default="auto",
                   help="where to run: " + ", ".join(_mode_names()) + " (default: auto)")
    p.add_argument("--repeat", metavar="N", type=int, default=None,
                   help="replay N times (default: a second time only when an output "
                        "differs; 1: never)")
    p.add_argument("--keep", metavar="DIR", type=Path,
                   help="keep the work folder (unpacked bundle, replayed study) in DIR")
    p.add_argument("--network", action="store_true", help="allow the run network access")
    p.add_argument("--input", metavar="NAME=PATH", action="append", default=[],
                   help="replace the study's input NAME (its path in the study, or file "
                        "name) with your own file; may be repeated")
    p.add_argument("--arg", metavar="X", action="append", default=[],
                   help="change the command's arguments, e.g. --arg=--steps --arg=50; "
                        "may be repeated")
    site = p.add_mutually_exclusive_group()
    site.add_argument("--sandbox", action="store_true",
                      help="a DOI or record number refers to sandbox.zenodo.org")
    site.add_argument("--url", metavar="BASE_URL",
                      help="fetch DOIs and record numbers from another Zenodo-compatible "
                           "server, e.g. a local test server")
    p.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    p.add_argument("--html", metavar="FILE", type=Path,
                   help="also write the report as a self-contained HTML page")
    p.set_defaults(func=run)


def _mode_names() -> list[str]:
    from ..replay.registry import mode_names
    return mode_names()


def parse_inputs(values: list[str]) -> dict[str, Path]:
    inputs = {}
    for value in values:
        name, eq, path = value.partition("=")
        if not eq or not name.strip() or not path.strip():
            raise UsageError(f"--input {value!r} is not NAME=PATH.",
                             "Example: --input data/temps.csv=my-temps.csv")
        inputs[name.strip()] = Path(path).expanduser()
    return inputs


def looks_remote(ref: str) -> bool:
    return ref.startswith(("https://", "http://")) or bool(DOI_RE.match(ref))


def json_failure(argv: list[str], message: str, hint: str | None, exit_code: int) -> dict:
    """The JSON document of a replay that failed before it began (its arguments), or by
    a bug: the command line is read as far as it can be."""
    from ..errors import StudypackError
    from ..replay.report import failure_dict

    words = argv[argv.index("replay") + 1:] if "replay" in argv else argv
    mode = next((w.split("=", 1)[1] for w in words if w.startswith("--mode=")), None)
    if mode is None and "--mode" in words[:-1]:
        mode = words[words.index("--mode") + 1]
    takes_value = {"--mode", "--repeat", "--keep", "--input", "--arg", "--url", "--html"}
    bundle, skip = None, False
    for word in words:
        if skip:
            skip = False
        elif word in takes_value:
            skip = True
        elif not word.startswith("-"):
            bundle = word
            break
    error = StudypackError(message, hint, exit_code=exit_code)
    return failure_dict(error, mode=mode or "auto", bundle=bundle)


def run(args) -> int:
    from ..errors import StudypackError
    from ..replay.report import failure_dict

    try:
        return _replay(args)
    except StudypackError as error:
        if args.json and not getattr(error, "reported", False):
            print(json.dumps(failure_dict(error, mode=args.mode, bundle=str(args.bundle)),
                             indent=2, ensure_ascii=False))
            error.reported = True    # main does not print a second document
        raise


def _sandbox_site() -> str:
    # (studypack.deposit loads requests: ~70 ms no local replay needs)
    from ..deposit.refs import SANDBOX

    return SANDBOX


def _replay(args) -> int:
    from ..fsutil import atomic_write_text
    from ..replay import replay_bundle, run_failure
    from ..replay.report import render_html, render_json, render_terminal
    from ._console import err_console, out_console, progress_bar

    inputs = parse_inputs(args.input)
    if args.html is not None and args.html.exists():
        raise UsageError(f"{args.html} already exists; it was left as it is.",
                         "Choose another name for --html.")
    with progress_bar(quiet=args.json) as (report, cancel):
        bundle = args.bundle
        download_dir = None
        site = args.url or (_sandbox_site() if args.sandbox else None)
        if not Path(bundle).exists() and (looks_remote(bundle) or site and bundle.isdigit()):
            from ..fetch import fetch_bundle
            download_dir = tempfile.TemporaryDirectory(prefix="studypack-fetch-")
            bundle = fetch_bundle(bundle, Path(download_dir.name), base_url=site,
                                  report=report, cancel=cancel)
        try:
            result = replay_bundle(bundle, mode=args.mode, keep=args.keep or False,
                                   network=args.network, inputs=inputs or None,
                                   args_override=args.arg or None, repeat=args.repeat,
                                   report=report, cancel=cancel)
        finally:
            if download_dir is not None:
                download_dir.cleanup()
    if args.json:
        out_console.print_json(render_json(result)) if out_console.is_terminal else \
            print(render_json(result))
    else:
        render_terminal(result, out_console)
        if result.workdir:
            out_console.print(f"Work folder kept in {result.workdir}")
    if args.html is not None:
        atomic_write_text(args.html, render_html(result))
        err_console.print(f"HTML report written to {args.html}")
    failure = run_failure(result)
    if failure is not None:
        failure.reported = True      # the JSON report above already says it
        raise failure
    if not result.compared:
        return EXIT_OK
    return EXIT_OK if result.reproduced else EXIT_NOT_REPRODUCED
