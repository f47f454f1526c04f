"""The index download of ``create`` starts while the study runs (issue #17): a real
venv, real pip downloading from a package index on loopback, a real rebuild."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from studypack.environment import wheels
from studypack.environment.detect import detect_environment
from studypack.environment.piplock import (NO_NETWORK, Prefetched, choose_distributions,
                                           list_distributions, vendor_wheels)
from studypack.environment.plan import EnvironmentPlan, Prefetch
from tests.support.wheel_index import WheelIndex


@pytest.fixture(scope="module")
def venv_and_wheels(tmp_path_factory):
    """A venv with six and idna installed, and a folder with their wheels (the index)."""
    base = tmp_path_factory.mktemp("prefetch")
    files = base / "files"
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "six",
                    "idna", "-d", str(files)], check=True)
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    with WheelIndex(files) as index:   # installed from an index, as a researcher does
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                        "--ignore-installed", "--no-cache-dir", "--index-url", index.url,
                        "--prefix", str(venv), "six", "idna"], check=True,
                       env={**os.environ, "PIP_CONFIG_FILE": os.devnull,
                            "PIP_FIND_LINKS": "", "PIP_TRUSTED_HOST": "127.0.0.1"})
    env = detect_environment(str(venv / "bin" / "python"))
    locked, _ = choose_distributions(env, list_distributions(env))
    assert {d.key for d in locked} == {"six", "idna"}
    return env, locked, files


@pytest.fixture
def empty_pip(monkeypatch, tmp_path):
    """No pip configuration, no pip cache, no wheel at hand but what the test serves."""
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("PIP_CACHE_DIR", str(tmp_path / "pip-cache"))
    monkeypatch.setenv("PIP_FIND_LINKS", "")
    monkeypatch.setenv("PIP_TRUSTED_HOST", "127.0.0.1")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))   # studypack's own


def test_prefetch_downloads_every_planned_wheel_from_the_index(venv_and_wheels, empty_pip,
                                                               monkeypatch, tmp_path):
    env, locked, files = venv_and_wheels
    with WheelIndex(files) as index:
        monkeypatch.setenv("PIP_INDEX_URL", index.url)
        prefetch = Prefetch(EnvironmentPlan(env, locked=locked), tmp_path / "prefetch", [],
                            use_index=True).start()
        found = prefetch.result()
    assert set(found) == {"six", "idna"}
    assert {source for _, source in found.values()} == {wheels.FROM_INDEX}
    assert found.asked == {(d.key, d.version) for d in locked}
    assert found.index_problem == ""

    # After the run: the lock keeps only what it needs (six), copied, not downloaded
    # again (the index is gone now).
    six = [d for d in locked if d.key == "six"]
    house = tmp_path / "wheelhouse"
    house.mkdir()
    sources, problem = vendor_wheels(six, env, house, prefetched=found)
    assert sources == {"six": wheels.FROM_INDEX} and problem == ""
    assert [w.name.split("-")[0] for w in house.glob("*.whl")] == ["six"]


def test_without_the_index_nothing_is_downloaded(venv_and_wheels, empty_pip, monkeypatch,
                                                 tmp_path):
    env, locked, _files = venv_and_wheels
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple/")   # refused
    prefetch = Prefetch(EnvironmentPlan(env, locked=locked), tmp_path / "prefetch", [],
                        use_index=False).start()
    found = prefetch.result()
    assert dict(found) == {} and found.asked == set()


def test_an_index_found_down_during_the_run_is_not_asked_again(venv_and_wheels, empty_pip,
                                                                monkeypatch, tmp_path):
    env, locked, files = venv_and_wheels
    six = [d for d in locked if d.key == "six"]
    with WheelIndex(files) as index:   # the index answers now, but the run found it down
        monkeypatch.setenv("PIP_INDEX_URL", index.url)
        house = tmp_path / "wheelhouse"
        house.mkdir()
        sources, problem = vendor_wheels(six, env, house,
                                         prefetched=Prefetched(index_problem=NO_NETWORK))
    assert problem == NO_NETWORK
    assert sources == {"six": wheels.REBUILT}   # not downloaded: the index was not asked


def test_a_distribution_over_the_cap_waits_for_the_run(venv_and_wheels, empty_pip,
                                                       monkeypatch, tmp_path):
    """Over the size cap, nothing is downloaded on speculation; the lock after the run
    downloads it then, because the run used it."""
    from studypack.environment.plan import installed_bytes
    env, locked, files = venv_and_wheels
    sizes = {d.key: installed_bytes(d) for d in locked}
    assert sizes["idna"] > sizes["six"] > 0
    with WheelIndex(files) as index:
        monkeypatch.setenv("PIP_INDEX_URL", index.url)
        prefetch = Prefetch(EnvironmentPlan(env, locked=locked), tmp_path / "prefetch", [],
                            use_index=True, max_each=sizes["six"]).start()
        found = prefetch.result()
        assert set(found) == {"six"}
        assert found.asked == {(d.key, d.version) for d in locked if d.key == "six"}
        house = tmp_path / "wheelhouse"
        house.mkdir()
        sources, problem = vendor_wheels(locked, env, house, prefetched=found)
    assert sources == {"six": wheels.FROM_INDEX, "idna": wheels.FROM_INDEX}
    assert problem == ""


def test_a_wheel_the_index_gave_is_at_hand_for_the_next_create(venv_and_wheels, empty_pip,
                                                               monkeypatch, tmp_path):
    """studypack keeps what the index gave (pip keeps nothing from a file:// index or
    with --no-cache-dir): the next create finds it with no index and no pip."""
    env, locked, files = venv_and_wheels
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")     # pip keeps nothing of it
    with WheelIndex(files) as index:
        monkeypatch.setenv("PIP_INDEX_URL", index.url)
        first = Prefetch(EnvironmentPlan(env, locked=locked), tmp_path / "first", [],
                         use_index=True).start().result()
    assert {source for _, source in first.values()} == {wheels.FROM_INDEX}
    kept = sorted(p.name for p in wheels.own_cache_dir().glob("*.whl"))
    assert kept == sorted(p.name for p in files.glob("*.whl"))

    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple/")   # refused
    again = Prefetch(EnvironmentPlan(env, locked=locked), tmp_path / "again", [],
                     use_index=True).start().result()
    assert set(again) == {"six", "idna"} and again.asked == set()   # the index not asked
    assert {source for _, source in again.values()} == \
        {f"{wheels.FROM_OWN_CACHE} {wheels.own_cache_dir()}"}
    house = tmp_path / "wheelhouse"
    house.mkdir()
    sources, problem = vendor_wheels(locked, env, house)
    assert problem == "" and set(sources) == {"six", "idna"}
    assert all(s.startswith(wheels.FROM_OWN_CACHE) for s in sources.values())


def test_the_kept_wheels_stay_under_their_bound(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    made = []
    for i, size in enumerate((3000, 3000, 3000)):
        wheel = tmp_path / f"w{i}-1.0-py3-none-any.whl"
        wheel.write_bytes(bytes(size))
        made.append(wheel)
        wheels.keep_in_own_cache([wheel], limit=7000)
        os.utime(wheels.own_cache_dir() / wheel.name, (1_700_000_000 + i,) * 2)
    wheels.keep_in_own_cache([], limit=7000)
    assert sorted(p.name for p in wheels.own_cache_dir().glob("*.whl")) == \
        [made[1].name, made[2].name]    # the least recently kept went first
