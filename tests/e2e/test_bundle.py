"""A real bundle of a real traced run: it opens with standard tools, its checksums hold,
and a damaged one is refused naming the member."""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
from pathlib import Path

import bagit
import pytest
import zstandard
from rocrate.rocrate import ROCrate

from studypack.bundle import format as fmt
from studypack.bundle.reader import read_info, unpack, verify
from studypack.errors import BundleError, UsageError

from tests.support.helpers import EXAMPLE, run_cli


def test_create_records_the_run(example_bundle):
    info = read_info(example_bundle)
    run = info.runs[0]
    assert run["command"] == ["python", "analysis.py", "--steps", "100"]
    assert run["exit_code"] == 0 and run["duration_s"] > 0
    assert run["host"]["kernel"] and run["host"]["os"]
    assert info.study["title"] == "Heat diffusion on a rod"
    assert info.metadata["outputs"] == ["results/profile.csv", "results/summary.json"]
    assert info.metadata["counts"]["rootfs"]["files"] > 10  # the traced interpreter and libs
    assert info.format_version == fmt.FORMAT_VERSION


def test_standard_tools_open_the_bundle(example_bundle, tmp_path):
    # tar --zstd extracts it; sha256sum checks the sidecar; bagit validates the bag.
    subprocess.run(["tar", "--zstd", "-xf", str(example_bundle)], cwd=tmp_path, check=True)
    subprocess.run(["sha256sum", "-c", example_bundle.name + ".sha256"],
                   cwd=example_bundle.parent, check=True, capture_output=True)
    bag_dir = tmp_path / "heat-diffusion"
    bag = bagit.Bag(str(bag_dir))
    bag.validate()
    assert (bag_dir / "data" / "REPLAY.md").read_text().startswith("# Heat diffusion")
    # The traced run's own record and the scrubbed ReproZip trace are there.
    assert (bag_dir / "data" / "trace" / "config.yml").exists()
    run = json.loads((bag_dir / "data" / "runs" / "1" / "run.json").read_text())
    assert "simulated 100 steps" in (bag_dir / "data/runs/1/stdout.txt").read_text()
    assert run["exit_code"] == 0


def test_ro_crate_describes_the_run_as_a_create_action(example_bundle, tmp_path):
    subprocess.run(["tar", "--zstd", "-xf", str(example_bundle)], cwd=tmp_path, check=True)
    crate = ROCrate(str(tmp_path / "heat-diffusion" / "data"))
    actions = [e for e in crate.get_entities() if e.type == "CreateAction"]
    assert len(actions) == 1
    action = actions[0]
    assert action["instrument"]["name"] == "Python"
    assert action["instrument"]["softwareVersion"] == read_info(example_bundle).metadata[
        "environment"]["python_version"]
    assert "python analysis.py --steps 100" in action["description"]
    assert "study/data/initial.csv" in [o.id for o in action["object"]]
    assert [r.id for r in action["result"]] == ["outputs/results/profile.csv",
                                                "outputs/results/summary.json"]


def test_roc_validator_accepts_the_process_run_crate(example_bundle, tmp_path):
    """The RO-Crate community's validator, offline: REQUIRED and RECOMMENDED."""
    from tests.support.rocrate_check import validate

    subprocess.run(["tar", "--zstd", "-xf", str(example_bundle)], cwd=tmp_path, check=True)
    assert validate(tmp_path / "heat-diffusion" / "data", "RECOMMENDED") == []


def test_metadata_comes_first_in_the_stream(example_bundle):
    with open(example_bundle, "rb") as fh:
        assert fh.read(4) == fmt.MAGIC_BYTES
        fh.seek(0)
        reader = zstandard.ZstdDecompressor().stream_reader(fh, read_across_frames=True)
        with tarfile.open(fileobj=reader, mode="r|") as tar:
            names = [tar.next().name for _ in range(3)]
    assert names == ["heat-diffusion/bagit.txt", "heat-diffusion/bag-info.txt",
                     "heat-diffusion/studypack.json"]


def test_verify_and_unpack_roundtrip(example_bundle, tmp_path):
    result = verify(example_bundle)
    assert result.ok and result.checked > 10 and result.sidecar == "ok"
    out = unpack(example_bundle, tmp_path)
    assert out.bag_dir == tmp_path / "heat-diffusion"
    assert (out.bag_dir / "data/study/analysis.py").read_bytes() == \
        (EXAMPLE / "analysis.py").read_bytes()


def test_unpack_never_overwrites(example_bundle, tmp_path):
    (tmp_path / "heat-diffusion").mkdir()
    (tmp_path / "heat-diffusion" / "mine.txt").write_text("keep")
    with pytest.raises(UsageError, match="already exists"):
        unpack(example_bundle, tmp_path)
    assert (tmp_path / "heat-diffusion" / "mine.txt").read_text() == "keep"


def _recompress_with(bundle: Path, out: Path, change) -> None:
    """Rewrite a bundle's tar stream, letting ``change(name, data)`` alter members."""
    with open(bundle, "rb") as fh:
        reader = zstandard.ZstdDecompressor().stream_reader(fh, read_across_frames=True)
        raw = reader.read()
    src = tarfile.open(fileobj=__import__("io").BytesIO(raw), mode="r:")
    import io
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as dst:
        for m in src.getmembers():
            data = src.extractfile(m).read() if m.isreg() else None
            data = change(m.name, data)
            if data is None and m.isreg():
                continue
            if m.isreg():
                m.size = len(data)
            dst.addfile(m, io.BytesIO(data) if m.isreg() else None)
    out.write_bytes(fmt.MARKER + zstandard.ZstdCompressor().compress(buf.getvalue()))


def test_a_changed_byte_is_named_by_verify(example_bundle, tmp_path):
    bad = tmp_path / "bad.studypack"

    def flip(name, data):
        if name.endswith("data/study/data/initial.csv"):
            return data.replace(b"x,temperature", b"x,temperaturE")
        return data

    _recompress_with(example_bundle, bad, flip)
    result = verify(bad)
    assert not result.ok
    assert result.problems == ["data/study/data/initial.csv does not match its checksum"]
    cli = run_cli("verify", bad, "--json")
    assert cli.returncode == 1
    report = json.loads(cli.stdout)
    assert report["ok"] is False and "initial.csv" in report["problems"][0]
    # unpack refuses and leaves nothing behind
    dest = tmp_path / "dest"
    with pytest.raises(BundleError, match="initial.csv does not match"):
        unpack(bad, dest)
    assert list(dest.iterdir()) == []


def test_a_missing_member_is_named(example_bundle, tmp_path):
    bad = tmp_path / "missing.studypack"
    _recompress_with(example_bundle, bad,
                     lambda name, data: None if name.endswith("results/summary.json") else data)
    result = verify(bad)
    assert "data/outputs/results/summary.json is listed in the manifest but missing" in result.problems


def test_a_corrupt_compressed_byte_is_refused_in_one_sentence(example_bundle, tmp_path):
    bad = tmp_path / "corrupt.studypack"
    data = bytearray(example_bundle.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    cli = run_cli("verify", bad)
    assert cli.returncode == 1
    assert "Traceback" not in cli.stderr and "studypack:" in cli.stderr


def test_sidecar_mismatch_is_reported(example_bundle, tmp_path):
    copy = tmp_path / "copy.studypack"
    shutil.copy(example_bundle, copy)
    Path(str(copy) + ".sha256").write_text("0" * 64 + "  copy.studypack\n")
    result = verify(copy)
    assert not result.ok and result.sidecar == "mismatch"


def test_info_json(example_bundle):
    cli = run_cli("info", example_bundle, "--json")
    assert cli.returncode == 0, cli.stderr
    doc = json.loads(cli.stdout)
    assert doc["format_version"] == 1 and doc["study"]["name"] == "heat-diffusion"
    assert doc["runs"][0]["exit_code"] == 0


def test_not_a_bundle_is_one_sentence(tmp_path):
    junk = tmp_path / "junk.studypack"
    junk.write_bytes(b"hello, I am not a bundle at all")
    cli = run_cli("info", junk)
    assert cli.returncode == 1 and "not a studypack bundle" in cli.stderr
    assert "Traceback" not in cli.stderr
    missing = run_cli("verify", tmp_path / "nope.studypack")
    assert missing.returncode == 2 and "does not exist" in missing.stderr
