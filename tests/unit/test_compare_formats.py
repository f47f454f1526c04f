"""Formats whose bytes change when their content does not: PDF dates, tab-separated
numbers, NumPy arrays, executed notebooks; and compare rules that cannot apply."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest

from studypack.replay.compare import compare_outputs, rule_warnings
from studypack.spec import CompareRule


def only(results, path):
    [result] = [r for r in results if r.path == path]
    return result


@pytest.fixture
def dirs(tmp_path):
    expected, actual = tmp_path / "expected", tmp_path / "actual"
    expected.mkdir()
    actual.mkdir()
    return expected, actual


# ---------------------------------------------------------------------------- PDF

def _matplotlib_pdf(path: Path, when: datetime.datetime, y: float = 1.0) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1, 2], [0, y, 0])
    fig.savefig(path, metadata={"CreationDate": when})
    plt.close(fig)


def test_pdf_differing_only_in_its_creation_date_is_reproduced(dirs):
    expected, actual = dirs
    _matplotlib_pdf(expected / "fig.pdf", datetime.datetime(2020, 1, 1, 12, 0, 0))
    _matplotlib_pdf(actual / "fig.pdf", datetime.datetime(2026, 11, 24, 9, 30, 5))
    assert (expected / "fig.pdf").read_bytes() != (actual / "fig.pdf").read_bytes()
    result = compare_outputs(expected, actual, ["fig.pdf"])[0]
    assert (result.status, result.method) == ("reproduced", "pdf")
    assert "dates or ID" in result.details[0]


def test_pdf_with_another_curve_differs(dirs):
    expected, actual = dirs
    when = datetime.datetime(2020, 1, 1)
    _matplotlib_pdf(expected / "fig.pdf", when, y=1.0)
    _matplotlib_pdf(actual / "fig.pdf", when, y=2.0)
    result = compare_outputs(expected, actual, ["fig.pdf"])[0]
    assert result.status == "differs"
    assert "beyond their dates and ID" in result.details[0]


def test_pdf_date_of_another_length_and_document_id_are_ignored(dirs):
    expected, actual = dirs
    body = ("%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\n2 0 obj\n"
            "<< /Producer (test) /CreationDate ({date}) >>\nendobj\n"
            "xref\n0 3\n0000000000 65535 f \n0000000009 00000 n \n{offset} 00000 n \n"
            "trailer\n<< /Size 3 /Root 1 0 R /Info 2 0 R /ID [<{id}> <{id}>] >>\n"
            "startxref\n{start}\n%%EOF\n")
    (expected / "a.pdf").write_text(body.format(date="D:20200101", offset="0000000052",
                                                id="AB12", start=120))
    (actual / "a.pdf").write_text(body.format(date="D:20261124093005+01'00'",
                                              offset="0000000052", id="FF99EE", start=135))
    assert compare_outputs(expected, actual, ["a.pdf"])[0].status == "reproduced"


# ------------------------------------------------------------ tab-separated numbers

def test_tab_separated_dat_uses_the_rule_tolerance(dirs):
    expected, actual = dirs
    (expected / "energy.dat").write_text("# step\tenergy\n1\t-1.00000001\n2\t-2.5\n")
    (actual / "energy.dat").write_text("# step\tenergy\n1\t-1.00000002\n2\t-2.5\n")
    exact = compare_outputs(expected, actual, ["energy.dat"])[0]
    assert exact.status == "differs"
    rule = CompareRule(path="*.dat", rel_tol=1e-6)
    result = compare_outputs(expected, actual, ["energy.dat"], rules=[rule])[0]
    assert (result.status, result.method) == ("reproduced", "numeric")
    assert "rel_tol=1e-06" in result.details[0]


def test_whitespace_separated_out_names_line_and_field_beyond_tolerance(dirs):
    expected, actual = dirs
    (expected / "run.out").write_text("iter  residual\n 10   1.0e-3\n 20   5.0e-4\n")
    (actual / "run.out").write_text("iter  residual\n 10   1.0e-3\n 20   9.0e-4\n")
    result = compare_outputs(expected, actual, ["run.out"], abs_tol=1e-5)[0]
    assert result.status == "differs"
    assert result.details == ["line 3, field 2: 5.0e-4 vs 9.0e-4"]


# -------------------------------------------------------------------------- NumPy

def test_npy_compared_by_value_with_the_index_of_the_first_difference(dirs):
    np = pytest.importorskip("numpy")
    expected, actual = dirs
    a = np.arange(12, dtype=np.float64).reshape(3, 4)
    b = a.copy()
    b[2, 1] += 1e-3
    np.save(expected / "m.npy", a)
    np.save(actual / "m.npy", b)
    result = compare_outputs(expected, actual, ["m.npy"])[0]
    assert (result.status, result.method) == ("differs", "array")
    assert result.details == ["1 of 12 values differ", "first at [2, 1]: 9.0 vs 9.001"]
    assert compare_outputs(expected, actual, ["m.npy"], abs_tol=1e-2)[0].status == "reproduced"


def test_npy_fortran_order_and_big_endian_hold_the_same_values(dirs):
    np = pytest.importorskip("numpy")
    expected, actual = dirs
    a = np.arange(6, dtype="<i4").reshape(2, 3)
    np.save(expected / "m.npy", a)
    np.save(actual / "m.npy", np.asfortranarray(a.astype(">i4")))
    assert (expected / "m.npy").read_bytes() != (actual / "m.npy").read_bytes()
    result = compare_outputs(expected, actual, ["m.npy"])[0]
    assert result.status == "reproduced", result.details


def test_npz_members_compared_by_name_and_value(dirs):
    np = pytest.importorskip("numpy")
    expected, actual = dirs
    np.savez(expected / "r.npz", x=np.linspace(0, 1, 5), n=np.array([1, 2, 3]))
    np.savez(actual / "r.npz", x=np.linspace(0, 1, 5) + 1e-12, n=np.array([1, 2, 4]),
             extra=np.zeros(2))
    result = compare_outputs(expected, actual, ["r.npz"], abs_tol=1e-9)[0]
    assert result.status == "differs"
    assert "extra: absent vs present" in result.details
    assert "n: first at [2]: 3 vs 4" in result.details
    assert not any(d.startswith("x:") for d in result.details)


def test_arrays_are_read_without_importing_numpy(dirs):
    import subprocess
    import sys
    np = pytest.importorskip("numpy")
    expected, actual = dirs
    np.save(expected / "v.npy", np.ones(3))
    np.save(actual / "v.npy", np.ones(3) * 2)
    code = ("import sys; from studypack.replay.compare import compare_outputs; "
            f"r = compare_outputs({str(expected)!r}, {str(actual)!r}, ['v.npy'])[0]; "
            "print(r.status, 'numpy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["differs", "False"]


# ---------------------------------------------------------------------- notebooks

def _notebook(count: int, text: str, took: str) -> str:
    return json.dumps({
        "nbformat": 4, "nbformat_minor": 5,
        "metadata": {"kernelspec": {"name": "python3"}},
        "cells": [
            {"cell_type": "code", "execution_count": count, "id": "a1",
             "metadata": {"execution": {"iopub.execute_input": took}},
             "source": ["print(mean)\n", "fig"],
             "outputs": [
                 {"output_type": "stream", "name": "stdout", "text": [text]},
                 {"output_type": "execute_result", "execution_count": count,
                  "data": {"text/plain": [f"<Figure at 0x7f{count}a3b2c1d0>"]},
                  "metadata": {}}]}]})


def test_notebook_counts_timings_and_addresses_are_not_content(dirs):
    expected, actual = dirs
    (expected / "nb.ipynb").write_text(_notebook(1, "0.5\n", "2020-01-01T00:00:00Z"))
    (actual / "nb.ipynb").write_text(_notebook(7, "0.5\n", "2026-11-24T09:00:00Z"))
    result = compare_outputs(expected, actual, ["nb.ipynb"])[0]
    assert (result.status, result.method) == ("reproduced", "notebook"), result.details


def test_notebook_output_difference_names_cell_and_output(dirs):
    expected, actual = dirs
    (expected / "nb.ipynb").write_text(_notebook(1, "0.5\n", "x"))
    (actual / "nb.ipynb").write_text(_notebook(1, "0.7\n", "x"))
    result = compare_outputs(expected, actual, ["nb.ipynb"])[0]
    assert result.status == "differs"
    assert result.details == ["cell 1, output 1 (stream): '0.5' vs '0.7'"]
    tolerant = compare_outputs(expected, actual, ["nb.ipynb"], abs_tol=0.5)[0]
    assert tolerant.status == "reproduced"


# ------------------------------------------------------------------ rule warnings

def test_rules_matching_nothing_or_not_applying_to_the_format_are_warned(dirs):
    expected, actual = dirs
    for root in dirs:
        (root / "plot.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
        (root / "table.dat").write_text("1 2\n")
    rules = [CompareRule(path="results/*.csv", rel_tol=1e-3),
             CompareRule(path="*.png", abs_tol=2),
             CompareRule(path="*.dat", abs_tol=1e-9)]
    results = compare_outputs(expected, actual, ["plot.png", "table.dat"], rules=rules)
    warnings = rule_warnings(rules, results, expected, actual)
    assert warnings == [
        "the [[compare.rules]] rule for 'results/*.csv' matches no output",
        "the tolerance of the [[compare.rules]] rule for '*.png' does not apply to plot.png "
        "(not numeric text, JSON, a notebook or a NumPy array): compared exactly"]
