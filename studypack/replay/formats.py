"""Comparers for the formats whose bytes change when their content does not.

Each function takes the two files (original, replay) and a tolerance, and returns
``(differences, used_tolerance)``: an empty list means "the same content", ``None``
means "this is not that format after all; compare otherwise".

- PDF: the creation/modification dates and the document ID are not content;
- whitespace- or tab-separated numeric text (``.dat``, ``.txt``, ``.out``, …), field by
  field, when a tolerance is declared;
- NumPy ``.npy``/``.npz`` by value, read with the standard library (no NumPy here);
- executed Jupyter notebooks by their cells' sources and outputs, without execution
  counts, timings, memory addresses or other volatile metadata.
"""

from __future__ import annotations

import ast
import json
import math
import re
import struct
import zipfile
from pathlib import Path
from typing import Any

MAX_DIFFERENCES = 10

# ---------------------------------------------------------------------------- PDF

_PDF_VOLATILE = [
    rb"/CreationDate\s*\((?:[^()\\]|\\.)*\)",
    rb"/ModDate\s*\((?:[^()\\]|\\.)*\)",
    rb"/ID\s*\[\s*<[0-9A-Fa-f]*>\s*<[0-9A-Fa-f]*>\s*\]",
    rb"<xmp:(?:CreateDate|ModifyDate|MetadataDate)>[^<]*</xmp:\w+>",
    rb"<xmpMM:(?:DocumentID|InstanceID)>[^<]*</xmpMM:\w+>",
    rb'xmp:(?:CreateDate|ModifyDate|MetadataDate)="[^"]*"',
    rb'xmpMM:(?:DocumentID|InstanceID)="[^"]*"',
]
_PDF_VOLATILE_RE = re.compile(b"|".join(b"(?:" + p + b")" for p in _PDF_VOLATILE))
# The cross-reference table holds byte offsets, which move when a date is longer.
_PDF_XREF_RE = re.compile(rb"\nxref\s.*?\ntrailer|startxref\s+\d+", re.S)


def normalise_pdf(data: bytes) -> bytes:
    data = _PDF_VOLATILE_RE.sub(b"<volatile>", data)
    return _PDF_XREF_RE.sub(b"<xref>", data)


def compare_pdf(expected: Path, actual: Path) -> list[str] | None:
    e, a = expected.read_bytes(), actual.read_bytes()
    if not (e.startswith(b"%PDF") and a.startswith(b"%PDF")):
        return None
    e_norm, a_norm = normalise_pdf(e), normalise_pdf(a)
    if e_norm == a_norm:
        return []
    offset = next((i for i, (x, y) in enumerate(zip(e_norm, a_norm)) if x != y),
                  min(len(e_norm), len(a_norm)))
    return [f"the documents differ beyond their dates and ID ({len(e)} bytes vs {len(a)} "
            f"bytes; first difference near byte {offset} once those are set aside)"]


# ---------------------------------------------------- whitespace-separated numbers

def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def close(a: float, b: float, rel_tol: float, abs_tol: float) -> bool:
    if math.isnan(a) and math.isnan(b):
        return True
    return math.isclose(a, b, rel_tol=rel_tol, abs_tol=abs_tol)


def compare_fields(expected: str, actual: str, rel_tol: float,
                   abs_tol: float) -> tuple[list[str], bool]:
    """Line by line, whitespace- or tab-separated fields; numbers within the tolerance."""
    e_lines, a_lines = expected.splitlines(), actual.splitlines()
    differences: list[str] = []
    used = False
    if len(e_lines) != len(a_lines):
        differences.append(f"{len(e_lines)} lines vs {len(a_lines)} lines")
    for number, (e_line, a_line) in enumerate(zip(e_lines, a_lines), 1):
        if e_line == a_line:
            continue
        e_fields, a_fields = e_line.split(), a_line.split()
        if len(e_fields) != len(a_fields):
            differences.append(f"line {number}: {len(e_fields)} fields vs {len(a_fields)} fields")
        for column, (e_f, a_f) in enumerate(zip(e_fields, a_fields), 1):
            if e_f == a_f:
                continue
            e_num, a_num = _number(e_f), _number(a_f)
            if e_num is not None and a_num is not None:
                if e_num == a_num:
                    continue
                if close(e_num, a_num, rel_tol, abs_tol):
                    used = True
                    continue
            differences.append(f"line {number}, field {column}: {e_f} vs {a_f}")
        if len(differences) >= MAX_DIFFERENCES:
            differences.append("… (more differences not shown)")
            break
    return differences, used


# -------------------------------------------------------------------------- NumPy

NPY_MAGIC = b"\x93NUMPY"
# dtype kind + size -> struct format character
_STRUCT = {("f", 2): "e", ("f", 4): "f", ("f", 8): "d",
           ("i", 1): "b", ("i", 2): "h", ("i", 4): "i", ("i", 8): "q",
           ("u", 1): "B", ("u", 2): "H", ("u", 4): "I", ("u", 8): "Q",
           ("b", 1): "?", ("c", 8): "f", ("c", 16): "d"}


class NpyArray:
    """One array of a ``.npy`` file: dtype, shape and its values as Python numbers."""

    def __init__(self, data: bytes):
        if not data.startswith(NPY_MAGIC) or len(data) < 10:
            raise ValueError("not a .npy file")
        major = data[6]
        if major == 1:
            (header_len,), start = struct.unpack("<H", data[8:10]), 10
        else:
            (header_len,), start = struct.unpack("<I", data[8:12]), 12
        header = ast.literal_eval(data[start:start + header_len].decode("latin-1"))
        self.descr = header["descr"]
        self.shape = tuple(header["shape"])
        self.fortran = bool(header.get("fortran_order"))
        self.body = data[start + header_len:]

    @property
    def dtype(self) -> str:
        return str(self.descr)

    def values(self) -> list | None:
        """Flat values in C order (complex numbers as pairs); None for dtypes read as bytes."""
        if not isinstance(self.descr, str) or len(self.descr) < 3:
            return None
        order, kind, size = self.descr[0], self.descr[1], int(self.descr[2:] or 0)
        char = _STRUCT.get((kind, size))
        if char is None:
            return None
        endian = ">" if order == ">" else "<"
        count = math.prod(self.shape)
        width = struct.calcsize(char) * (2 if kind == "c" else 1)
        if len(self.body) < count * width:
            raise ValueError("the file is shorter than its shape says")
        flat = [v for v, in struct.iter_unpack(endian + char, self.body[:count * width])]
        if kind == "c":
            flat = [complex(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]
        if self.fortran and len(self.shape) > 1:
            flat = _fortran_to_c(flat, self.shape)
        return flat


def _fortran_to_c(flat: list, shape: tuple) -> list:
    out = [None] * len(flat)
    for c_index in range(len(flat)):
        f_index, stride, rest = 0, 1, c_index
        position = []
        for dim in reversed(shape):
            position.append(rest % dim)
            rest //= dim
        position.reverse()
        for pos, dim in zip(position, shape):
            f_index += pos * stride
            stride *= dim
        out[c_index] = flat[f_index]
    return out


def _index(flat_index: int, shape: tuple) -> str:
    position = []
    for dim in reversed(shape or (1,)):
        position.append(flat_index % dim)
        flat_index //= dim
    return "[" + ", ".join(map(str, reversed(position))) + "]"


def compare_arrays(expected: bytes, actual: bytes, rel_tol: float, abs_tol: float,
                   label: str = "") -> tuple[list[str], bool]:
    e, a = NpyArray(expected), NpyArray(actual)
    prefix = f"{label}: " if label else ""
    if e.shape != a.shape:
        return [f"{prefix}shape {e.shape} vs {a.shape}"], False
    e_values, a_values = e.values(), a.values()
    if e_values is None or a_values is None or e.dtype != a.dtype and (
            e.dtype[1:] != a.dtype[1:]):
        if e.dtype != a.dtype:
            return [f"{prefix}dtype {e.dtype} vs {a.dtype}"], False
        return ([] if e.body == a.body else [f"{prefix}the {e.dtype} values differ"]), False
    changed, first, used = 0, None, False
    for i, (x, y) in enumerate(zip(e_values, a_values)):
        if x == y:
            continue
        if isinstance(x, complex):
            same = close(x.real, y.real, rel_tol, abs_tol) and close(x.imag, y.imag, rel_tol, abs_tol)
        elif isinstance(x, float) and math.isnan(x) and math.isnan(y):
            continue
        else:
            same = (rel_tol or abs_tol) and close(float(x), float(y), rel_tol, abs_tol)
        if same and (rel_tol or abs_tol):
            used = True
            continue
        changed += 1
        if first is None:
            first = f"first at {_index(i, e.shape)}: {x!r} vs {y!r}"
    if not changed:
        return [], used
    return [f"{prefix}{changed} of {len(e_values)} values differ", f"{prefix}{first}"], used


def compare_npy(expected: Path, actual: Path, rel_tol: float,
                abs_tol: float) -> tuple[list[str] | None, bool]:
    try:
        return compare_arrays(expected.read_bytes(), actual.read_bytes(), rel_tol, abs_tol)
    except (ValueError, SyntaxError, KeyError, struct.error):
        return None, False


def compare_npz(expected: Path, actual: Path, rel_tol: float,
                abs_tol: float) -> tuple[list[str] | None, bool]:
    try:
        with zipfile.ZipFile(expected) as ez, zipfile.ZipFile(actual) as az:
            e_names, a_names = set(ez.namelist()), set(az.namelist())
            differences: list[str] = []
            used = False
            for name in sorted(e_names - a_names):
                differences.append(f"{name.removesuffix('.npy')}: present vs absent")
            for name in sorted(a_names - e_names):
                differences.append(f"{name.removesuffix('.npy')}: absent vs present")
            for name in sorted(e_names & a_names):
                found, needed = compare_arrays(ez.read(name), az.read(name), rel_tol, abs_tol,
                                               label=name.removesuffix(".npy"))
                differences += found
                used |= needed
            return differences[:MAX_DIFFERENCES], used
    except (zipfile.BadZipFile, ValueError, SyntaxError, KeyError, struct.error):
        return None, False


# ---------------------------------------------------------------------- notebooks

_ADDRESS_RE = re.compile(r"\b0x[0-9a-fA-F]{6,}\b")
_VOLATILE_OUTPUT_KEYS = {"execution_count", "metadata", "transient"}


def notebook_content(doc: dict) -> list[dict]:
    """The cells as they matter to a reader: type, source, outputs without volatile
    fields (execution counts, timings, transient ids, memory addresses)."""
    cells = []
    for cell in doc.get("cells") or []:
        outputs = []
        for output in cell.get("outputs") or []:
            kept = {k: v for k, v in output.items() if k not in _VOLATILE_OUTPUT_KEYS}
            outputs.append(json.loads(_ADDRESS_RE.sub("0x…", json.dumps(kept, sort_keys=True))))
        cells.append({"cell_type": cell.get("cell_type"), "source": _joined(cell.get("source")),
                      "outputs": outputs})
    return cells


def _joined(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value or "")


def _output_text(output: dict) -> str:
    if "text" in output:
        return _joined(output["text"])
    data = output.get("data") or {}
    if "text/plain" in data:
        return _joined(data["text/plain"])
    return json.dumps(output, sort_keys=True)


def compare_notebook(expected: str, actual: str, rel_tol: float,
                     abs_tol: float) -> tuple[list[str] | None, bool]:
    try:
        e_doc, a_doc = json.loads(expected), json.loads(actual)
    except ValueError:
        return None, False
    if not isinstance(e_doc, dict) or "cells" not in e_doc or not isinstance(a_doc, dict):
        return None, False
    e_cells, a_cells = notebook_content(e_doc), notebook_content(a_doc)
    differences: list[str] = []
    used = False
    if len(e_cells) != len(a_cells):
        differences.append(f"{len(e_cells)} cells vs {len(a_cells)} cells")
    for number, (e_cell, a_cell) in enumerate(zip(e_cells, a_cells), 1):
        if e_cell == a_cell:
            continue
        if e_cell["source"] != a_cell["source"]:
            differences.append(f"cell {number}: its source differs")
            continue
        e_out, a_out = e_cell["outputs"], a_cell["outputs"]
        if len(e_out) != len(a_out):
            differences.append(f"cell {number}: {len(e_out)} outputs vs {len(a_out)} outputs")
            continue
        for k, (eo, ao) in enumerate(zip(e_out, a_out), 1):
            if eo == ao:
                continue
            e_text, a_text = _output_text(eo), _output_text(ao)
            if rel_tol or abs_tol:
                found, needed = compare_fields(e_text, a_text, rel_tol, abs_tol)
                used |= needed
                if not found and eo.keys() == ao.keys():
                    continue
            first_e, first_a = _first_differing_line(e_text, a_text)
            differences.append(f"cell {number}, output {k} ({eo.get('output_type', '?')}): "
                               f"{first_e!r} vs {first_a!r}")
        if len(differences) >= MAX_DIFFERENCES:
            differences.append("… (more differences not shown)")
            break
    return differences, used


def _first_differing_line(expected: str, actual: str) -> tuple[str, str]:
    e_lines, a_lines = expected.splitlines(), actual.splitlines()
    for x, y in zip(e_lines, a_lines):
        if x != y:
            return x[:60], y[:60]
    n = min(len(e_lines), len(a_lines))
    return ("\n".join(e_lines[n:n + 1]) or "(end)")[:60], ("\n".join(a_lines[n:n + 1]) or "(end)")[:60]
