"""The architecture holds: the core never imports Qt, the GUI is its own package,
every command has a --help that teaches, and bad invocations get one sentence."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import studypack

from tests.support.helpers import run_cli


def test_core_never_imports_qt():
    modules = [m.name for m in pkgutil.walk_packages(studypack.__path__, "studypack.")
               if not m.name.endswith("__main__")]  # __main__ runs the CLI
    code = ("import importlib, sys\n"
            f"for name in {modules!r}:\n"
            "    importlib.import_module(name)\n"
            "bad = sorted(m for m in sys.modules if m.startswith(('PySide6', 'studypack_gui')))\n"
            "print(bad)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]", out.stdout
    assert len(modules) > 15


def test_gui_is_installed_under_its_own_name():
    out = subprocess.run(
        [sys.executable, "-c",
         "import importlib.util as u; print(u.find_spec('ui') is None, "
         "u.find_spec('studypack_gui') is not None)"],
        capture_output=True, text=True, cwd="/", check=True)
    assert out.stdout.split() == ["True", "True"]


def test_help_lists_commands_and_exit_codes():
    out = run_cli("--help")
    assert out.returncode == 0
    for command in ("init", "create", "info", "verify", "unpack", "replay", "deposit", "demo"):
        assert command in out.stdout
    assert "exit codes:" in out.stdout and "130" in out.stdout


def test_every_command_has_a_description():
    for command in ("init", "create", "info", "verify", "unpack", "replay", "fetch",
                    "deposit", "keygen", "sign", "demo"):
        out = run_cli(command, "--help")
        assert out.returncode == 0, (command, out.stderr)
        assert len(out.stdout) > 200, command


def test_unknown_option_is_one_sentence_and_exit_2():
    out = run_cli("verify", "--frobnicate", "x.studypack")
    assert out.returncode == 2
    assert "Traceback" not in out.stderr and "unrecognized arguments" in out.stderr
