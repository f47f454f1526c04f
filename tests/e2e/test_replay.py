"""Replaying received bundles for real: every mode, on the example study and on two small
studies whose outputs cannot reproduce (a timestamp, an unseeded random draw).

Bundles are made once per session with the real `studypack create` (a real ReproZip
trace); replays run real programs in real containers or from the traced files.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.e2e.conftest import create, make_study
from tests.support.helpers import copy_example, run_cli
from studypack.errors import Cancelled, StudypackError
from studypack.progress import CancelToken
from studypack.replay import replay_bundle


# ------------------------------------------------------------------- fixtures

@pytest.fixture(scope="session")
def timestamp_bundle_with_rules(tmp_path_factory, plain_python) -> Path:
    """The same study, whose spec tolerates a day on the clock and ignores provenance."""
    base = tmp_path_factory.mktemp("timestamp-rules")
    rules = ('\n[[compare.rules]]\npath = "results/clock.csv"\nabs_tol = 86400\n'
             'columns = ["unix_time"]\n'
             '\n[[compare.rules]]\npath = "results/provenance.json"\nignore = true\n')
    return create(make_study(base, "timestamp", plain_python, rules),
                  base / "timestamp-rules.studypack", "--no-image")


@pytest.fixture(scope="session")
def example_bundle_with_image(tmp_path_factory, study_python, base_image, docker_engine) -> Path:
    """The example study with its Dockerfile, vendored wheels and the saved image.

    The image create built is removed again, so an image replay really loads it."""
    base = tmp_path_factory.mktemp("example-image")
    study = copy_example(base, study_python)
    out = create(study, base / "heat-diffusion.studypack", "--save-image",
                 "--base-image", base_image)
    from studypack.bundle.reader import read_info

    image = (read_info(out).metadata.get("environment") or {}).get("image") or {}
    for ref in filter(None, [image.get("tag"), image.get("id")]):
        docker_engine.remove_image(ref)
    return out


@pytest.fixture(scope="session")
def script_bundle(tmp_path_factory, study_python) -> Path:
    """The example study started through a shell script, with its virtualenv inside
    the study folder (as `studypack demo` lays it out)."""
    base = tmp_path_factory.mktemp("script")
    study = copy_example(base, study_python)
    shutil.copytree(study_python.parent.parent, study / ".venv", symlinks=True)
    (study / "run.sh").write_text('#!/bin/sh\nset -e\necho "shell step"\n'
                                  ".venv/bin/python analysis.py --steps 50\n")
    (study / "run.sh").chmod(0o755)
    spec = study / "studypack.toml"
    text = spec.read_text().replace('command = ["python", "analysis.py", "--steps", "100"]',
                                    'command = ["./run.sh"]')
    spec.write_text(text.replace(f'python = "{study_python}"', 'python = ".venv/bin/python"'))
    return create(study, base / "script.studypack", "--no-image")


def outputs_by_path(result) -> dict:
    return {o.path: o for o in result.outputs}


def studypack_containers(docker_engine) -> list:
    """Containers this test process started (other test sessions may run beside it)."""
    return docker_engine.client.containers.list(
        all=True, filters={"label": f"io.studypack.container={os.getpid()}"})


def replay_images(docker_engine) -> list[str]:
    """Images a replay in this process built, imported or loaded and left behind (one
    API call: other test sessions may remove their images while this one lists)."""
    return [t for image in docker_engine.client.api.images() for t in image.get("RepoTags") or []
            if t.startswith("studypack-replay") and t.split(":", 1)[1].startswith(f"{os.getpid()}-")]


# ------------------------------------------------------- directory mode (no engine)

def test_example_reproduces_in_directory_mode(example_bundle, tmp_path):
    result = replay_bundle(example_bundle, mode="directory", keep=tmp_path / "work")
    assert result.mode == "directory"
    statuses = {o.path: o.status for o in result.outputs}
    assert statuses == {"results/profile.csv": "reproduced", "results/summary.json": "reproduced"}
    assert result.reproduced
    assert result.runs[0].exit_code == 0 and "simulated 100 steps" in result.runs[0].stdout


def test_shell_script_with_venv_inside_the_study_in_directory_mode(script_bundle):
    result = replay_bundle(script_bundle, mode="directory")
    assert result.runs[0].stdout.startswith("shell step\n")
    assert result.reproduced and len(result.outputs) == 2
    # Honest about what the directory mode cannot rewrite: the script's own child.
    assert any("started other programs" in note and ".venv/bin/python" in note
               for note in result.notes)


def test_directory_mode_uses_the_traced_interpreter_not_this_machines(timestamp_bundle, tmp_path,
                                                                     monkeypatch):
    work = tmp_path / "work"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))   # no kept traced files
    result = replay_bundle(timestamp_bundle, mode="directory", keep=work)
    first = result.runs[0].stdout
    # sys.prefix of the replayed Python lies inside the traced files (unpacked, then kept
    # for the next replay: studypack/replay/rootfs_cache.py).
    prefix = first.split(" from ", 1)[1].strip()
    kept = tmp_path / "cache" / "studypack" / "rootfs"
    assert Path(prefix).resolve().is_relative_to(kept.resolve()), first
    assert "/rootfs/" in prefix


def test_timestamp_outputs_reported_as_differing_in_a_pipeline(timestamp_bundle):
    result = replay_bundle(timestamp_bundle, mode="directory")
    assert [r.command[1] for r in result.runs] == ["stamp.py", "report.py"]   # in order
    assert result.runs[1].stdout == "3 values, total 6.75\n"    # read step 1's output
    by_path = outputs_by_path(result)
    assert by_path["results/sum.csv"].status == "reproduced"
    assert by_path["results/report.txt"].status == "reproduced"
    assert by_path["results/clock.csv"].status == "differs"
    assert by_path["results/clock.csv"].details[1].startswith("row 1, column unix_time: ")
    provenance = by_path["results/provenance.json"]
    assert provenance.status == "differs"
    assert provenance.details[1].startswith("$.generated_at: ")
    # a second replay disagrees with the first: the study itself is not deterministic
    assert result.replays == 2
    assert {p: o.cause for p, o in by_path.items()} == {
        "results/sum.csv": None, "results/report.txt": None,
        "results/clock.csv": "nondeterministic", "results/provenance.json": "nondeterministic"}
    assert provenance.details[0].startswith("cause: nondeterministic")
    assert not result.reproduced


def test_repeat_1_replays_once_and_leaves_the_cause_open(timestamp_bundle):
    result = replay_bundle(timestamp_bundle, mode="directory", repeat=1)
    clock = outputs_by_path(result)["results/clock.csv"]
    assert result.replays == 1 and clock.status == "differs" and clock.cause is None
    assert "--repeat 1" in clock.details[0]


def test_timestamp_reproduced_with_tolerance_and_ignore_rules(timestamp_bundle_with_rules):
    result = replay_bundle(timestamp_bundle_with_rules, mode="directory")
    by_path = outputs_by_path(result)
    assert by_path["results/clock.csv"].status == "reproduced"
    assert "abs_tol=86400" in by_path["results/clock.csv"].details[0]
    assert by_path["results/provenance.json"].status == "ignored"
    assert result.reproduced


def test_unseeded_random_draw_not_reproduced_and_values_shown(random_bundle, tmp_path):
    result = replay_bundle(random_bundle, mode="directory", keep=tmp_path / "work")
    original = (result.expected_dir / "results/draw.csv").read_text().splitlines()[1]
    replayed = (result.actual_dir / "results/draw.csv").read_text().splitlines()[1]
    by_path = outputs_by_path(result)
    assert by_path["results/draw.csv"].details[1:] == [
        f"row 1, column value: {original.split(',')[1]} vs {replayed.split(',')[1]}"]
    assert by_path["results/draw.json"].status == "differs"
    assert by_path["results/draw.json"].details[1].startswith("$.value: ")
    assert {o.cause for o in result.outputs} == {"nondeterministic"}
    assert not result.reproduced


@pytest.fixture
def web_folder(tmp_path):
    """A folder served over http on the loopback interface (references are http(s))."""
    from tests.support.web import served_folder

    folder = tmp_path / "remote"
    folder.mkdir()
    with served_folder(folder) as base:
        yield folder, base


def test_input_kept_by_reference_is_fetched_and_checked(tmp_path, plain_python, web_folder):
    import hashlib

    folder, base_url = web_folder
    remote = folder / "scale.txt"
    remote.write_text("10\n")
    digest = hashlib.sha256(remote.read_bytes()).hexdigest()
    reference = (f'\n[[data.references]]\npath = "data/scale.txt"\nurl = "{base_url}/scale.txt"\n'
                 f'size = {remote.stat().st_size}\nsha256 = "{digest}"\n')
    study = make_study(tmp_path, "unseeded-random", plain_python)
    spec = study / "studypack.toml"
    text = spec.read_text()
    spec.write_text(text.replace("[outputs]", reference.strip() + "\n\n[outputs]"))
    bundle = create(study, tmp_path / "referenced.studypack", "--no-image")
    result = replay_bundle(bundle, mode="directory")
    assert result.runs[0].exit_code == 0
    assert any("fetched data/scale.txt" in note for note in result.notes)
    remote.write_text("11\n")             # the remote copy changed since the bundle was made
    with pytest.raises(StudypackError) as err:
        replay_bundle(bundle, mode="directory")
    assert "data/study/data/scale.txt" in err.value.message and "differs" in err.value.message


def test_cli_exit_3_json_and_self_contained_html(random_bundle, tmp_path):
    html = tmp_path / "report.html"
    run = run_cli("replay", random_bundle, "--mode", "directory", "--json", "--html", html)
    assert run.returncode == 3, run.stderr
    doc = json.loads(run.stdout)
    assert doc["mode"] == "directory" and doc["reproduced"] is False
    assert {o["path"]: (o["status"], o["cause"]) for o in doc["outputs"]} == {
        "results/draw.csv": ("differs", "nondeterministic"),
        "results/draw.json": ("differs", "nondeterministic")}
    assert doc["causes"] == {"nondeterministic": 2} and doc["replays"] == 2
    page = html.read_text()
    assert "results/draw.csv" in page and "NOT reproduced" in page
    assert "differs (nondeterministic)" in page
    assert "<link" not in page and "src=" not in page and "@import" not in page


def test_cli_exit_0_when_reproduced(timestamp_bundle_with_rules):
    run = run_cli("replay", timestamp_bundle_with_rules, "--mode", "directory")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Reproduced 3/3 outputs (1 ignored)." in " ".join(run.stdout.split())


def test_reuse_with_own_input_and_argument(example_bundle, tmp_path):
    own = tmp_path / "hot-rod.csv"
    rows = ["x,temperature"] + [f"{i / 20:.4f},{100.0 if i == 10 else 0.0}" for i in range(21)]
    own.write_text("\n".join(rows) + "\n")
    result = replay_bundle(example_bundle, mode="directory", keep=tmp_path / "work",
                           inputs={"initial.csv": own}, args_override=["--steps", "7"])
    assert not result.compared
    assert result.runs[0].command[-2:] == ["--steps", "7"]
    assert {o.status for o in result.outputs} == {"produced"}
    summary = json.loads((result.actual_dir / "results/summary.json").read_text())
    assert summary["steps"] == 7
    assert summary["max_temperature"] < 100.0
    assert any("initial.csv replaced" in note for note in result.notes)


def test_a_failing_replayed_command_exits_5_with_its_error_output(example_bundle):
    run = run_cli("replay", example_bundle, "--mode", "directory", "--arg=--steps",
                  "--arg=many")
    assert run.returncode == 5, run.stdout + run.stderr
    assert "exited with code 2" in run.stderr and "invalid int value: 'many'" in run.stderr
    assert "Traceback" not in run.stderr


def test_unknown_input_name_is_refused_with_the_inputs_listed(example_bundle):
    with pytest.raises(StudypackError) as err:
        replay_bundle(example_bundle, mode="directory", inputs={"nope.csv": Path(__file__)})
    assert "nope.csv" in err.value.message and "data/initial.csv" in err.value.hint


def test_other_architecture_is_explained(example_bundle, tmp_path):
    from studypack.bundle.reader import unpack

    bag = unpack(example_bundle, tmp_path).bag_dir
    record = bag / "data/runs/1/run.json"
    doc = json.loads(record.read_text())
    doc["host"]["architecture"] = "aarch64"        # as if recorded on an ARM machine
    record.write_text(json.dumps(doc))
    with pytest.raises(StudypackError) as err:
        replay_bundle(bag, mode="auto")
    text = err.value.full_text()
    assert "aarch64" in text and "x86_64" in text
    assert "directory:" in text and "trace:" in text     # every mode says why not


def test_auto_without_engine_prefers_the_sandbox_and_says_why(timestamp_bundle, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    result = replay_bundle(timestamp_bundle, mode="auto", repeat=1)
    assert result.mode == "sandbox"
    assert "no Docker daemon" in result.mode_reason.replace("No Docker", "no Docker")
    with pytest.raises(StudypackError) as err:
        replay_bundle(timestamp_bundle, mode="trace")
    assert err.value.exit_code == 2
    assert "Docker" in err.value.message and "--mode sandbox" in err.value.hint


def test_damaged_bundle_is_refused_before_anything_runs(random_bundle, tmp_path):
    damaged = tmp_path / "damaged.studypack"
    data = bytearray(random_bundle.read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged.write_bytes(bytes(data))
    run = run_cli("replay", damaged, "--mode", "directory")
    assert run.returncode == 1, run.stderr
    assert "studypack:" in run.stderr and "Traceback" not in run.stderr


def test_keep_never_writes_into_a_folder_with_files(random_bundle, tmp_path):
    (tmp_path / "mine.txt").write_text("precious")
    run = run_cli("replay", random_bundle, "--mode", "directory", "--keep", tmp_path)
    assert run.returncode == 2 and "not empty" in run.stderr
    assert (tmp_path / "mine.txt").read_text() == "precious"


def test_cancel_in_directory_mode_stops_and_removes_the_work_folder(random_bundle, tmp_path):
    cancel = CancelToken()
    work = tmp_path / "work"

    def report(progress):
        if progress.phase == "run" and "running" in progress.message:
            cancel.cancel()

    with pytest.raises(Cancelled):
        replay_bundle(random_bundle, mode="directory", workdir=work, report=report,
                      cancel=cancel)
    assert not work.exists()


# ------------------------------------------------------------------ container modes

@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.parametrize("mode", ["image", "rebuild", "trace"])
def test_example_reproduces_in_container_modes(example_bundle_with_image, docker_engine, mode):
    result = replay_bundle(example_bundle_with_image, mode=mode)
    assert result.mode == mode
    assert {o.path: o.status for o in result.outputs} == {
        "results/profile.csv": "reproduced", "results/summary.json": "reproduced"}
    assert result.reproduced
    assert studypack_containers(docker_engine) == []
    assert replay_images(docker_engine) == []          # loaded/built images removed


@pytest.mark.docker
def test_shell_script_with_venv_inside_the_study_in_a_trace_image(script_bundle, docker_engine):
    result = replay_bundle(script_bundle, mode="trace")
    assert result.runs[0].stdout.startswith("shell step\n")
    assert result.reproduced and len(result.outputs) == 2
    assert not any("started other programs" in note for note in result.notes)


@pytest.mark.docker
def test_auto_prefers_the_saved_image(example_bundle_with_image):
    result = replay_bundle(example_bundle_with_image, mode="auto")
    assert result.mode == "image" and result.mode_reason.startswith("auto chose image")


@pytest.mark.docker
def test_timestamp_pipeline_in_a_trace_image_differs(timestamp_bundle, docker_engine):
    result = replay_bundle(timestamp_bundle, mode="trace")
    by_path = outputs_by_path(result)
    assert by_path["results/sum.csv"].status == "reproduced"
    assert by_path["results/report.txt"].status == "reproduced"
    assert by_path["results/provenance.json"].status == "differs"
    assert by_path["results/provenance.json"].cause == "nondeterministic"
    assert result.runs[0].exit_code == 0 and not result.reproduced


@pytest.mark.docker
def test_trace_replay_has_no_network(tmp_path, plain_python, docker_engine):
    study = tmp_path / "net"
    study.mkdir()
    (study / "probe.py").write_text(
        "import socket, os\nos.makedirs('results', exist_ok=True)\n"
        "names = sorted(n for _, n in socket.if_nameindex())\n"
        "open('results/interfaces.txt', 'w').write(' '.join(names))\n")
    (study / "studypack.toml").write_text(
        '[study]\nname = "net"\ntitle = "Network probe"\n[run]\ncommand = ["python", "probe.py"]\n'
        f'[outputs]\npaths = ["results/"]\n[environment]\npython = "{plain_python}"\n')
    bundle = create(study, tmp_path / "net.studypack", "--no-image")
    result = replay_bundle(bundle, mode="trace", keep=tmp_path / "work")
    assert (result.actual_dir / "results/interfaces.txt").read_text() == "lo"


@pytest.mark.docker
def test_cancel_mid_run_removes_container_and_image(random_bundle, docker_engine):
    cancel = CancelToken()

    def report(progress):
        if progress.phase == "run" and "running" in progress.message:
            cancel.cancel()

    with pytest.raises(Cancelled):
        replay_bundle(random_bundle, mode="trace", report=report, cancel=cancel)
    assert studypack_containers(docker_engine) == []
    assert replay_images(docker_engine) == []


def test_replay_straight_from_a_record_url(random_bundle, tmp_path, monkeypatch, capsys):
    """A published record's URL is fetched (checksums checked), then replayed."""
    from tests.support.zenodo_server import FakeZenodo

    from studypack.cli import main

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("ZENODO_TOKEN", "replay-test-token")
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
    bundle = tmp_path / random_bundle.name
    shutil.copy(random_bundle, bundle)
    shutil.copy(str(random_bundle) + ".sha256", str(bundle) + ".sha256")
    with FakeZenodo() as server:
        server.add_token("replay-test-token")
        assert main(["deposit", str(bundle), "--url", server.url, "--yes", "--json",
                     "--publish"]) == 0
        record_url = json.loads(capsys.readouterr().out)["record_url"]
        assert record_url.startswith("http://127.0.0.1:")
        code = main(["replay", record_url, "--mode", "directory", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 3 and doc["mode"] == "directory"
    assert {o["path"]: o["status"] for o in doc["outputs"]} == {
        "results/draw.csv": "differs", "results/draw.json": "differs"}


def test_a_base_image_bundle_with_no_package_to_install_builds_and_rebuilds(
        tmp_path, plain_python, base_image, docker_engine):
    """A virtualenv with zero packages and --base-image: the Dockerfile copies no
    wheelhouse (there is none), the image builds, and a rebuild replay reproduces."""
    study = tmp_path / "stdlib-only"
    study.mkdir()
    (study / "main.py").write_text("import os\nos.makedirs('results', exist_ok=True)\n"
                                   "open('results/sum.txt', 'w').write(str(sum(range(10))))\n")
    (study / "studypack.toml").write_text(
        '[study]\nname = "stdlib-only"\ntitle = "stdlib only"\n[run]\n'
        'command = ["python", "main.py"]\n[outputs]\npaths = ["results/"]\n'
        f'[environment]\nkind = "venv"\npython = "{plain_python}"\n')
    tag = f"studypack-test/stdlib-only:{os.getpid()}"
    made = run_cli("create", study, "-o", tmp_path / "stdlib-only.studypack", "--base-image",
                   base_image, "--tag", tag, "--json")
    assert made.returncode == 0, made.stderr
    from studypack.bundle.reader import read_info

    info = read_info(tmp_path / "stdlib-only.studypack")
    assert (info.metadata.get("environment") or {}).get("image", {}).get("tag") == tag
    docker_engine.remove_image(tag)
    result = replay_bundle(tmp_path / "stdlib-only.studypack", mode="rebuild",
                           keep=tmp_path / "work", repeat=1)
    dockerfile = (result.workdir / "bag" / "stdlib-only" / "data" / "env" / "Dockerfile")
    assert "wheelhouse" not in dockerfile.read_text()
    assert not (dockerfile.parent / "wheelhouse").exists()
    assert result.reproduced, [(o.path, o.status, o.details) for o in result.outputs]
