"""Why an output differs: causes from repeated replays, what changed in the environment,
the registry of modes and auto's choice, and the HTML report's pictures."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from studypack.errors import EXIT_USAGE
from studypack.replay import ReplayResult
from studypack.replay.causes import assign_causes, cause_counts, needs_repeat
from studypack.replay.compare import compare_outputs
from studypack.replay.envdiff import PROBE, environment_diff, locked_packages, parse_probe
from studypack.replay.registry import (BundleFacts, Host, ModeUnavailable, check_modes,
                                       choose_mode, help_table, mode_names)
from studypack.replay.report import render_html, render_json
from studypack.tracehints import trace_hints


def write(root: Path, rel: str, text: str) -> None:
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    (root / rel).write_text(text)


# ------------------------------------------------------------------------- causes

@pytest.fixture
def three_runs(tmp_path):
    """The original run's outputs and two replays': a clock (another value each time),
    a result that changed once and stayed (the environment), one missing, one same."""
    original, first, second = (tmp_path / n for n in ("original", "first", "second"))
    for root, clock in ((original, "100"), (first, "200"), (second, "300")):
        write(root, "clock.txt", clock)
        write(root, "same.txt", "1")
    write(original, "mean.txt", "0.5")
    write(first, "mean.txt", "0.6")
    write(second, "mean.txt", "0.6")
    write(original, "plot.txt", "x")
    return original, first, second


def test_causes_tell_nondeterminism_from_the_environment(three_runs):
    original, first, second = three_runs
    outputs = compare_outputs(original, first, ["."])
    repeat = compare_outputs(first, second, ["."])
    assert needs_repeat(outputs, failed_run=False)
    assign_causes(outputs, [repeat], failed_run=False)
    causes = {o.path: o.cause for o in outputs}
    assert causes == {"clock.txt": "nondeterministic", "mean.txt": "environment",
                      "plot.txt": "missing", "same.txt": None}
    assert cause_counts(outputs) == {"nondeterministic": 1, "environment": 1, "missing": 1}
    mean = next(o for o in outputs if o.path == "mean.txt")
    assert mean.details[0].startswith("cause: environment")


def test_a_failed_run_is_the_cause_of_every_output_not_made(three_runs):
    original, first, _ = three_runs
    outputs = compare_outputs(original, first, ["."])
    assert not needs_repeat(outputs, failed_run=True)
    assign_causes(outputs, [], failed_run=True)
    assert {o.cause for o in outputs if not o.ok} == {"failed-run"}


def test_without_a_second_replay_the_cause_stays_open(three_runs):
    original, first, _ = three_runs
    outputs = compare_outputs(original, first, ["."])
    assign_causes(outputs, [], failed_run=False)
    clock = next(o for o in outputs if o.path == "clock.txt")
    assert clock.cause is None and "--repeat 1" in clock.details[0]


# ----------------------------------------------------------------- environment

def test_environment_diff_lists_what_changed_and_nothing_else():
    original = {"os": "Debian 12", "kernel": "6.1.0", "cpu": "AMD EPYC",
                "cpu_flags": ["avx2", "fma"], "cpu_count": 8, "libc": "glibc 2.36",
                "python": "3.11.7", "packages": {"numpy": "1.26.4", "scipy": "1.11.0"},
                "blas": ["libopenblas64_p-r0-0cf96a72.3.23.dev.so"], "locale": "C.UTF-8",
                "timezone": "UTC (UTC+0000)", "threads": {"OMP_NUM_THREADS": "4"}}
    replay = dict(original, python="3.11.2", cpu_flags=["avx2", "avx512f", "fma"],
                  packages={"numpy": "2.0.0"}, locale="C.utf8", threads={})
    rows = environment_diff(original, replay)
    assert rows == [
        {"what": "CPU instruction sets (AVX2/AVX-512/FMA)", "original": "avx2, fma",
         "replay": "avx2, avx512f, fma"},
        {"what": "Python interpreter", "original": "3.11.7", "replay": "3.11.2"},
        {"what": "package numpy", "original": "1.26.4", "replay": "2.0.0"},
        {"what": "package scipy", "original": "1.11.0", "replay": "not installed"},
        {"what": "OMP_NUM_THREADS", "original": "4", "replay": "unset"}]
    # the modes that run the traced files hold only the package files the run opened
    assert not any(r["what"].startswith("package")
                   for r in environment_diff(original, replay, packages=False))


def test_the_probe_runs_on_builtin_modules_and_reports_this_python():
    run = subprocess.run([sys.executable, "-S", "-c", PROBE], capture_output=True, text=True,
                         check=True)
    facts = parse_probe("noise from the study\n" + run.stdout)
    assert facts["python"] == ".".join(map(str, sys.version_info[:3]))
    assert facts["kernel"] and "threads" in facts
    assert re.fullmatch(r"glibc \d+\.\d+", facts["libc"])
    imported = set(re.findall(r"^\s*(?:import|from)\s+(\w+)", PROBE, re.M))
    assert imported <= {"os", "sys", "_locale", "time"}


def test_locked_packages_read_from_a_pip_lock_and_a_conda_lock(tmp_path):
    (tmp_path / "requirements.lock").write_text(
        "# generated\nnumpy==1.26.4 \\\n    --hash=sha256:abc\nTyping_Extensions==4.9.0\n")
    assert locked_packages(tmp_path, "requirements.lock") == {
        "numpy": "1.26.4", "typing-extensions": "4.9.0"}
    (tmp_path / "conda-lock.yml").write_text(
        "version: 1\npackage:\n- name: python\n  version: 3.11.8\n- name: numpy\n"
        "  version: 1.26.4\n")
    assert locked_packages(tmp_path, "conda-lock.yml") == {"python": "3.11.8", "numpy": "1.26.4"}


def test_trace_hints_name_urandom_and_network_lookups(tmp_path):
    db = tmp_path / "trace.sqlite3"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE opened_files(id INTEGER PRIMARY KEY, run_id INTEGER, "
                     "name TEXT, timestamp INTEGER, mode INTEGER, is_directory BOOLEAN, "
                     "process INTEGER)")
        for name in ("/usr/lib/python3.11/os.py", "/dev/urandom", "/etc/resolv.conf"):
            conn.execute("INSERT INTO opened_files(run_id, name, timestamp, mode, "
                         "is_directory, process) VALUES (0, ?, 0, 1, 0, 1)", (name,))
    hints = trace_hints(db)
    assert len(hints) == 2
    assert "/dev/urandom" in hints[0] and "--network" in hints[1]
    assert trace_hints(tmp_path / "absent.sqlite3") == []


# ------------------------------------------------------------------- registry

class NoDockerHost(Host):
    """This machine, but with the engine answer given (the registry's logic under test,
    not Docker's detection)."""
    engine_problem = "No Docker daemon answers at unix:///nowhere"


def test_registry_order_and_names():
    assert mode_names() == ["auto", "image", "rebuild", "trace", "sandbox", "directory"]


def test_modes_that_cannot_work_are_not_offered_and_say_why():
    bundle = BundleFacts(has_rootfs=True, architectures={Host().architecture})
    checks = {c.mode: c.reason for c in check_modes(bundle, NoDockerHost())}
    assert checks["image"] == "the bundle has no saved image"
    assert checks["rebuild"] == "the bundle has no Dockerfile with vendored packages"
    assert checks["trace"].startswith("No Docker daemon answers")
    assert checks["directory"] is None
    table = help_table(NoDockerHost())
    offered, _, missing = table.partition("not available on this machine:")
    assert "trace " not in offered and "trace" in missing


def test_auto_prefers_the_sandbox_to_directory_and_names_what_it_skipped():
    host = NoDockerHost()
    if host.sandbox_problem:
        pytest.skip(f"no sandbox here: {host.sandbox_problem}")
    bundle = BundleFacts(has_rootfs=True, architectures={host.architecture})
    mode, reason = choose_mode(bundle, "auto", host)
    assert mode == "sandbox"
    assert "not image: the bundle has no saved image" in reason


def test_asking_for_a_mode_that_cannot_run_is_a_usage_error_with_the_way_out():
    bundle = BundleFacts(has_rootfs=True, architectures={"aarch64", "x86_64"})
    with pytest.raises(ModeUnavailable) as err:
        choose_mode(bundle, "image", NoDockerHost())
    assert err.value.exit_code == EXIT_USAGE
    assert err.value.message == ("The image mode cannot replay this bundle here: the bundle "
                                 "has no saved image.")
    assert err.value.hint.startswith("Try --mode ")


def test_another_architecture_rules_out_every_mode():
    other = "aarch64" if Host().architecture != "aarch64" else "x86_64"
    bundle = BundleFacts(has_image=True, has_rootfs=True, architectures={other})
    with pytest.raises(ModeUnavailable) as err:
        choose_mode(bundle, "auto", NoDockerHost())
    assert other in err.value.hint and "directory:" in err.value.hint


def test_bundle_facts_from_the_metadata_alone():
    facts = BundleFacts.from_metadata({
        "counts": {"image": {"files": 1}, "rootfs": {"files": 0}},
        "environment": {"dockerfile": "data/env/Dockerfile",
                        "base_image": {"pinned": "reg/x@sha256:ab", "ref": "reg/x:1"}},
        "runs": [{"host": {"architecture": "amd64"}}]})
    assert (facts.has_image, facts.has_dockerfile, facts.has_rootfs) == (True, True, False)
    assert facts.base_image == "reg/x@sha256:ab" and facts.architectures == {"x86_64"}


# --------------------------------------------------------------------- report

def _png(path: Path, colour, spot=None) -> None:
    from PIL import Image

    image = Image.new("RGB", (40, 30), colour)
    if spot:
        image.putpixel(spot, (255, 255, 255))
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def test_html_shows_a_differing_image_side_by_side_with_its_difference(tmp_path):
    from studypack.replay.pictures import difference_pictures

    original, replay = tmp_path / "o", tmp_path / "r"
    _png(original / "fig.png", (0, 0, 0))
    _png(replay / "fig.png", (0, 0, 0), spot=(3, 4))
    outputs = compare_outputs(original, replay, ["fig.png"])
    result = ReplayResult(mode="directory", mode_reason="test", compared=True,
                          outputs=outputs, study="s")
    result.pictures = difference_pictures(outputs, original, replay)
    result.environment_diff = [{"what": "Python interpreter", "original": "3.11.7",
                                "replay": "3.11.2"}]
    page = render_html(result)
    sources = re.findall(r'src="([^"]*)"', page)
    assert len(sources) == 3 and all(s.startswith("data:image/png;base64,") for s in sources)
    assert "changed pixels in red" in page and "<link" not in page
    assert "What changed since the original run" in page and "3.11.2" in page
    doc = json.loads(render_json(result))
    assert doc["environment_diff"][0]["replay"] == "3.11.2"
    assert "data:image" not in json.dumps(doc)      # pictures only in the HTML page
