"""Comparing a replay's outputs with the original run's: what a user reads in the report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from studypack.replay.compare import (compare_outputs, list_outputs, select_outputs,
                                      snapshot_outputs)
from studypack.spec import CompareRule


def write(root: Path, rel: str, content: str | bytes) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")


@pytest.fixture
def dirs(tmp_path):
    return tmp_path / "expected", tmp_path / "actual"


def only(results, path):
    [result] = [r for r in results if r.path == path]
    return result


def test_identical_bytes_are_reproduced(dirs):
    expected, actual = dirs
    for root in dirs:
        write(root, "results/a.csv", "x,y\n1,2\n")
        write(root, "results/sub/b.bin", b"\0\1\2")
    results = compare_outputs(expected, actual, ["results/"])
    assert [(r.path, r.status, r.method) for r in results] == [
        ("results/a.csv", "reproduced", "bytes"), ("results/sub/b.bin", "reproduced", "bytes")]


def test_csv_difference_names_row_column_and_both_values(dirs):
    expected, actual = dirs
    write(expected, "results/stats.csv", "step,mean,max\n1,0.5,1\n2,0.512,2\n")
    write(actual, "results/stats.csv", "step,mean,max\n1,0.5,1\n2,0.498,2\n")
    result = only(compare_outputs(expected, actual, ["results/"]), "results/stats.csv")
    assert result.status == "differs"
    assert result.details == ["row 2, column mean: 0.512 vs 0.498"]


def test_csv_within_global_tolerance_is_reproduced(dirs):
    expected, actual = dirs
    write(expected, "out.csv", "t,v\n0,1.0000001\n1,2.0\n")
    write(actual, "out.csv", "t,v\n0,1.0000002\n1,2.0\n")
    assert compare_outputs(expected, actual, ["out.csv"])[0].status == "differs"
    result = compare_outputs(expected, actual, ["out.csv"], rel_tol=1e-6)[0]
    assert result.status == "reproduced" and result.method == "numeric"
    assert "rel_tol=1e-06" in result.details[0]


def test_tolerance_outside_is_still_a_difference(dirs):
    expected, actual = dirs
    write(expected, "out.tsv", "t\tv\n0\t1.0\n")
    write(actual, "out.tsv", "t\tv\n0\t1.1\n")
    result = compare_outputs(expected, actual, ["out.tsv"], abs_tol=0.01)[0]
    assert result.status == "differs"
    assert result.details == ["row 1, column v: 1.0 vs 1.1"]


def test_rule_tolerance_limited_to_named_columns(dirs):
    expected, actual = dirs
    write(expected, "r/x.csv", "a,b\n1.0,1.0\n")
    write(actual, "r/x.csv", "a,b\n1.001,1.001\n")
    rules = [CompareRule(path="r/*.csv", abs_tol=0.01, columns=["a"])]
    result = compare_outputs(expected, actual, ["r/"], rules=rules)[0]
    assert result.status == "differs"
    assert result.details == ["row 1, column b: 1.0 vs 1.001"]


def test_json_numbers_compared_recursively_with_paths(dirs):
    expected, actual = dirs
    doc = {"summary": {"mean": 0.25, "values": [1, 2, 3]}, "label": "rod"}
    write(expected, "r.json", json.dumps(doc))
    doc["summary"]["values"][2] = 3.5
    doc["label"] = "bar"
    write(actual, "r.json", json.dumps(doc, indent=1))
    result = compare_outputs(expected, actual, ["r.json"])[0]
    assert result.status == "differs"
    assert result.details == ["$.summary.values[2]: 3 vs 3.5", "$.label: rod vs bar"]


def test_json_within_tolerance_but_reformatted(dirs):
    expected, actual = dirs
    write(expected, "r.json", json.dumps({"v": [1.0, 2.0]}))
    write(actual, "r.json", json.dumps({"v": [1.0 + 1e-12, 2.0]}, indent=2))
    assert compare_outputs(expected, actual, ["r.json"])[0].status == "differs"
    result = compare_outputs(expected, actual, ["r.json"], rel_tol=1e-9)[0]
    assert result.status == "reproduced"


def test_same_values_other_formatting_without_tolerance_differs(dirs):
    """No tolerance declared: only identical bytes count."""
    expected, actual = dirs
    write(expected, "r.json", '{"a": 1}')
    write(actual, "r.json", '{"a":1}')
    result = compare_outputs(expected, actual, ["r.json"])[0]
    assert result.status == "differs" and result.method == "text"


def test_timestamp_line_differs_unless_ignored(dirs):
    expected, actual = dirs
    write(expected, "results/log.txt", "run started\nat 2026-01-01T00:00:00Z\ndone\n")
    write(actual, "results/log.txt", "run started\nat 2026-11-21T22:00:00Z\ndone\n")
    result = compare_outputs(expected, actual, ["results/"])[0]
    assert result.status == "differs"
    assert result.details == ["line 2: at 2026-01-01T00:00:00Z vs at 2026-11-21T22:00:00Z"]
    rules = [CompareRule(path="results/log.txt", ignore=True)]
    assert compare_outputs(expected, actual, ["results/"], rules=rules)[0].status == "ignored"


def test_missing_and_new_outputs(dirs):
    expected, actual = dirs
    write(expected, "results/gone.csv", "a\n1\n")
    write(actual, "results/extra.csv", "a\n1\n")
    results = compare_outputs(expected, actual, ["results/"])
    assert {r.path: r.status for r in results} == {
        "results/gone.csv": "missing", "results/extra.csv": "new"}


def test_a_file_the_study_had_before_the_replay_is_not_new(tmp_path):
    """A file under [outputs] the original run did not write (packed with the study) is
    not counted as new when the replay leaves it as it was; one it rewrites is."""
    expected, actual = tmp_path / "expected", tmp_path / "actual"
    write(expected, "results/sum.txt", "3\n")
    write(actual, "results/last-year.txt", "old\n")
    write(actual, "results/rewritten.txt", "old\n")
    before = snapshot_outputs(actual, ["results/"])
    write(actual, "results/sum.txt", "3\n")            # the replay's outputs
    write(actual, "results/rewritten.txt", "new\n")
    write(actual, "results/extra.txt", "1\n")
    results = compare_outputs(expected, actual, ["results/"], before=before)
    assert {r.path: r.status for r in results} == {
        "results/sum.txt": "reproduced", "results/rewritten.txt": "new",
        "results/extra.txt": "new"}


def test_png_with_other_metadata_but_same_pixels_is_reproduced(dirs):
    from PIL import Image, PngImagePlugin

    expected, actual = dirs
    image = Image.new("RGB", (4, 3), (10, 20, 30))
    for root, stamp in ((expected, "2026-01-01"), (actual, "2026-11-21")):
        (root / "fig").mkdir(parents=True)
        info = PngImagePlugin.PngInfo()
        info.add_text("Creation Time", stamp)
        image.save(root / "fig" / "plot.png", pnginfo=info)
    assert (expected / "fig/plot.png").read_bytes() != (actual / "fig/plot.png").read_bytes()
    result = compare_outputs(expected, actual, ["fig/"])[0]
    assert result.status == "reproduced" and result.method == "pixels"


def test_png_with_changed_pixel_differs(dirs):
    from PIL import Image

    expected, actual = dirs
    for root in dirs:
        root.mkdir(parents=True)
    image = Image.new("RGB", (4, 3), (10, 20, 30))
    image.save(expected / "plot.png")
    image.putpixel((2, 1), (255, 0, 0))
    image.save(actual / "plot.png")
    result = compare_outputs(expected, actual, ["plot.png"])[0]
    assert result.status == "differs"
    assert result.details == ["1 of 12 pixels differ",
                              "first at x=2, y=1: (10, 20, 30) vs (255, 0, 0)"]


def test_binary_difference_gives_offset(dirs):
    expected, actual = dirs
    write(expected, "b.dat", b"\0abcdef")
    write(actual, "b.dat", b"\0abXdef")
    result = compare_outputs(expected, actual, ["b.dat"])[0]
    assert result.status == "differs"
    assert "first differing byte at offset 3" in result.details


def test_glob_output_paths_and_reuse_listing(tmp_path):
    write(tmp_path, "out/a.csv", "1\n")
    write(tmp_path, "out/b.txt", "2\n")
    write(tmp_path, "other.csv", "3\n")
    assert select_outputs(tmp_path, ["out/*.csv", "other.csv"]) == ["other.csv", "out/a.csv"]
    listed = list_outputs(tmp_path, ["out/"])
    assert [(r.path, r.status) for r in listed] == [("out/a.csv", "produced"),
                                                    ("out/b.txt", "produced")]
