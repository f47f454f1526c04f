"""The ``studypack`` command line: a thin caller of the core functions.

Each sub-command lives in a module of this package that defines ``register(sub)``
(adds its parser, with ``set_defaults(func=run)``) and ``run(args) -> int``.
Add a new command by adding its module name to ``COMMANDS``. With ``--json`` on the
line, every failure of a command (bad arguments included) prints one JSON document on
stdout: the module's ``json_failure(argv, message, hint, exit_code) -> dict`` if it
defines one, else :func:`failure_document`.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import keyword
import os
import sys
import traceback

from .. import __version__
from ..errors import EXIT_CANCELLED, EXIT_INTERNAL, EXIT_USAGE, StudypackError
from ..safetext import printable

COMMANDS = [
    "init", "create", "info", "verify", "unpack",
    "replay", "fetch", "deposit",
    "keygen", "sign",
    "base-image", "import", "export",
    "demo",
]


def module_name(command: str) -> str:
    """``base-image`` → ``base_image``; ``import`` → ``import_`` (a Python keyword)."""
    name = command.replace("-", "_")
    return name + "_" if keyword.iskeyword(name) else name


EPILOG = """\
exit codes:
  0   success (replay: every output reproduced)
  1   the bundle is damaged or unsafe
  2   bad input (arguments, studypack.toml, missing file)
  3   replay finished but some output differs or is missing
  4   the container engine (Docker/Podman) is missing or failed
  5   the study's own command failed
  6   a network service (Zenodo) refused or could not be reached
  7   not enough room, or no permission, to write
  70  internal error (a bug: please report it)
  130 cancelled
With --json, a command prints one JSON document on stdout, when it fails too
("ok": false with the error; replay: "reproduced": false with the reason).

A typical session:
  studypack init my-study/              # write my-study/studypack.toml
  studypack create my-study/ -o my.studypack
  studypack verify my.studypack
  studypack replay my.studypack
"""


class BadArguments(SystemExit):
    """A command line argparse refused: ``main`` says so (usage, or JSON) and exits 2."""

    def __init__(self, parser: argparse.ArgumentParser, message: str):
        super().__init__(EXIT_USAGE)
        self.parser = parser
        self.message = message


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one sentence, exit 2, no usage dump wall
        raise BadArguments(self, message)


def _chosen_command(argv: list[str]) -> str | None:
    """The command named on the line, when there is exactly one to load."""
    for arg in argv:
        if arg in ("-h", "--help", "--version"):
            return None
        if not arg.startswith("-"):
            return arg if arg in COMMANDS else None
    return None


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The full parser; with ``only``, just that command's module is imported (the
    others get a bare entry) so that e.g. ``info`` does not pay for rich progress bars,
    requests or PyYAML it never uses."""
    parser = _Parser(
        prog="studypack",
        description="Package a research study (code, data, environment and one traced run) "
                    "into one checksummed bundle; verify, replay and archive it.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"studypack {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        if only is not None and name != only:
            sub.add_parser(name)
            continue
        importlib.import_module(f".{module_name(name)}", __name__).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # One command, then exit: the cyclic collector's default pace (a pass every 700
    # allocations, each full pass walking every object) cost create ~0.3 s of CPU on a
    # study of a few thousand files; little of what a command makes is cyclic garbage.
    gc.set_threshold(50_000, 20, 20)
    command = _chosen_command(argv)
    parser = build_parser(command)
    json_failure = _json_failure(command, argv)
    try:
        args = parser.parse_args(argv)
    except BadArguments as bad:
        if json_failure:
            json_failure(f"{bad.message}.", f"See `studypack {command} --help`.", EXIT_USAGE)
        bad.parser.print_usage(sys.stderr)
        sys.stderr.write(f"studypack: error: {printable(bad.message)}\n")
        raise SystemExit(EXIT_USAGE) from None
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.func(args) or 0)
    except StudypackError as err:
        if json_failure and not getattr(err, "reported", False):
            json_failure(err.message, err.hint, err.exit_code)
        # a message may quote a bundle's names: never let them drive the terminal
        sys.stderr.write(f"studypack: {printable(err.message, keep_newlines=True)}\n")
        if err.hint:
            sys.stderr.write(f"  {printable(err.hint, keep_newlines=True)}\n")
        return err.exit_code
    except KeyboardInterrupt:
        if json_failure:
            json_failure("Cancelled.", None, EXIT_CANCELLED)
        sys.stderr.write("studypack: cancelled.\n")
        return EXIT_CANCELLED
    except BrokenPipeError:
        return 0
    except Exception:  # a bug: keep the details, say one sentence
        details = traceback.format_exc()
        path = _save_crash(details)
        message = ("An unexpected internal error happened (a bug in studypack). "
                   f"Details were written to {path}; please attach them to a bug report.")
        if json_failure:
            json_failure(message, None, EXIT_INTERNAL)
        sys.stderr.write(f"studypack: {message[0].lower()}{message[1:]}\n")
        if os.environ.get("STUDYPACK_DEBUG"):
            sys.stderr.write(details)
        return EXIT_INTERNAL


def failure_document(command: str, message: str, hint: str | None, exit_code: int) -> dict:
    """What a command run with ``--json`` prints on stdout when it fails, unless it
    defines its own ``json_failure``: a script reading stdout always gets one document."""
    return {"ok": False, "command": command, "error": message, "hint": hint,
            "exit_code": exit_code, "studypack_version": __version__}


def _json_failure(command: str | None, argv: list[str]):
    """With ``--json`` on the command line of a command: a function that prints that
    command's failure document on stdout (its ``json_failure``, else
    :func:`failure_document`); else None."""
    options = argv[:argv.index("--")] if "--" in argv else argv
    if command is None or "--json" not in options:
        return None
    module = importlib.import_module(f".{module_name(command)}", __name__)
    make = getattr(module, "json_failure", None)
    if make is None:
        def make(argv: list[str], message: str, hint: str | None, exit_code: int) -> dict:
            return failure_document(command, message, hint, exit_code)

    def emit(message: str, hint: str | None, exit_code: int) -> None:
        print(json.dumps(make(options, message, hint, exit_code), indent=2,
                         ensure_ascii=False))
    return emit


def _save_crash(details: str) -> str:
    import tempfile

    fd, path = tempfile.mkstemp(prefix="studypack-crash-", suffix=".txt")
    with os.fdopen(fd, "w") as fh:
        fh.write(details)
    return path


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
