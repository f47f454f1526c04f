"""Compare the outputs of a replay with the outputs of the original run, file by file.

Pure: reads two folders, writes nothing. Each output gets one status:

- ``reproduced``: identical bytes, or equal within a tolerance the spec declares
  (numeric text: CSV/TSV cell by cell, JSON numbers recursively, any whitespace- or
  tab-separated text field by field, NumPy arrays value by value), or the same content
  where bytes change with nothing in it: a PNG with the same pixels, a PDF but for its
  dates and ID, an executed notebook but for its counts, timings and addresses
  (see :mod:`studypack.replay.formats`);
- ``differs``: with the first differences, e.g. ``row 3, column mean: 0.512 vs 0.498``;
- ``missing``: the original run wrote it, the replay did not;
- ``new``: the replay wrote it, the original run did not;
- ``ignored``: a ``[[compare.rules]]`` rule with ``ignore = true`` matches it.

Without a declared tolerance, different bytes always mean ``differs``; CSV and JSON
are still read structurally so that the report names the cells that changed.
"""

from __future__ import annotations

import csv
import difflib
import fnmatch
import io
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Iterable, Sequence

from ..hashing import sha256_file
from . import formats

REPRODUCED = "reproduced"
DIFFERS = "differs"
MISSING = "missing"
NEW = "new"
IGNORED = "ignored"
PRODUCED = "produced"          # reuse mode: written, not compared
STATUSES = (REPRODUCED, DIFFERS, MISSING, NEW, IGNORED, PRODUCED)
FAILING = (DIFFERS, MISSING)

MAX_DIFFERENCES = 10           # differences listed per file
MAX_TEXT_BYTES = 8 * 1024 * 1024   # larger files get a byte comparison, not a text diff
TEXT_SUFFIXES_CSV = {".csv": ",", ".tsv": "\t"}


@dataclass
class Tolerance:
    rel_tol: float = 0.0
    abs_tol: float = 0.0
    columns: list[str] = field(default_factory=list)   # empty: every column / key

    @property
    def declared(self) -> bool:
        return self.rel_tol > 0 or self.abs_tol > 0

    def applies_to(self, column: str | None) -> bool:
        return not self.columns or (column is not None and column in self.columns)

    def describe(self) -> str:
        parts = []
        if self.rel_tol:
            parts.append(f"rel_tol={self.rel_tol:g}")
        if self.abs_tol:
            parts.append(f"abs_tol={self.abs_tol:g}")
        if self.columns:
            parts.append("columns " + ", ".join(self.columns))
        return ", ".join(parts)


@dataclass
class OutputResult:
    path: str                          # relative to the study root, with /
    status: str
    details: list[str] = field(default_factory=list)
    method: str = ""                   # bytes | numeric | pixels | text | binary
    expected_size: int | None = None
    actual_size: int | None = None
    expected_sha256: str = ""
    actual_sha256: str = ""
    cause: str | None = None           # why not reproduced: see studypack.replay.causes

    @property
    def ok(self) -> bool:
        return self.status not in FAILING

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ------------------------------------------------------------------ file selection

def _is_glob(pattern: str) -> bool:
    return any(ch in pattern for ch in "*?[")


def select_outputs(root: Path, output_paths: Sequence[str]) -> list[str]:
    """Files under ``root`` named by the spec's output paths (folders, files or globs)."""
    found: set[str] = set()
    if not root.is_dir():
        return []
    for entry in output_paths:
        pattern = entry.strip().rstrip("/") or "."
        if _is_glob(pattern):
            candidates = root.glob(pattern)
        else:
            candidates = [root / pattern]
        for candidate in candidates:
            if candidate.is_symlink() or candidate.is_file():
                found.add(candidate.relative_to(root).as_posix())
            elif candidate.is_dir():
                for sub in candidate.rglob("*"):
                    if sub.is_file() or sub.is_symlink():
                        found.add(sub.relative_to(root).as_posix())
    return sorted(found)


def matching_rule(path: str, rules: Iterable[Any]):
    """The first ``[[compare.rules]]`` entry whose glob matches ``path``.

    A rule ``results/`` (a folder) matches everything below it, like output paths do.
    """
    for rule in rules or ():
        pattern = rule.path.strip()
        if pattern.endswith("/"):
            if path.startswith(pattern) or fnmatch.fnmatch(path, pattern + "*"):
                return rule
        elif fnmatch.fnmatch(path, pattern) or PurePosixPath(path).match(pattern):
            return rule
    return None


def tolerance_for(path: str, rules, rel_tol: float | None, abs_tol: float | None):
    """(ignored, Tolerance) for one output: a matching rule wins over the global values."""
    rule = matching_rule(path, rules)
    if rule is not None:
        if rule.ignore:
            return True, Tolerance()
        if rule.rel_tol is not None or rule.abs_tol is not None:
            return False, Tolerance(rule.rel_tol or 0.0, rule.abs_tol or 0.0,
                                    list(rule.columns or []))
        if rule.columns:
            return False, Tolerance(rel_tol or 0.0, abs_tol or 0.0, list(rule.columns))
    return False, Tolerance(rel_tol or 0.0, abs_tol or 0.0)


# ------------------------------------------------------------------------ entry

def compare_outputs(expected_dir: Path, actual_dir: Path, output_paths: Sequence[str],
                    rules=(), rel_tol: float | None = None,
                    abs_tol: float | None = None,
                    before: dict[str, str] | None = None) -> list[OutputResult]:
    """Compare every output file of the original run (``expected_dir``) with the
    replay's (``actual_dir``); both folders are laid out like the study root.

    ``before`` (:func:`snapshot_outputs` of the study folder before the replay ran): a
    file the study already had under its output paths, which the original run did not
    write and the replay left as it was, is not an output of either run, so not new."""
    expected_dir, actual_dir = Path(expected_dir), Path(actual_dir)
    expected = set(select_outputs(expected_dir, output_paths))
    actual = set(select_outputs(actual_dir, output_paths))
    results = []
    for path in sorted(expected | actual):
        ignored, tolerance = tolerance_for(path, rules, rel_tol, abs_tol)
        e_file, a_file = expected_dir / path, actual_dir / path
        result = OutputResult(path=path, status=REPRODUCED)
        if path in expected:
            result.expected_size, result.expected_sha256 = _size_and_digest(e_file)
        if path in actual:
            result.actual_size, result.actual_sha256 = _size_and_digest(a_file)
            if path not in expected and before and before.get(path) == result.actual_sha256:
                continue   # there before the replay ran, and left untouched
        if ignored:
            result.status = IGNORED
            result.details = ["ignored by a [[compare.rules]] rule"]
        elif path not in actual:
            result.status = MISSING
            result.details = ["the original run wrote this file; the replay did not"]
        elif path not in expected:
            result.status = NEW
            result.details = ["the replay wrote this file; the original run did not"]
        else:
            compare_files(e_file, a_file, tolerance, result)
        results.append(result)
    return results


def snapshot_outputs(study_dir: Path, output_paths: Sequence[str]) -> dict[str, str]:
    """path -> sha256 of the files under the output paths, before the replay runs."""
    return {path: _size_and_digest(Path(study_dir) / path)[1]
            for path in select_outputs(Path(study_dir), output_paths)}


def list_outputs(actual_dir: Path, output_paths: Sequence[str]) -> list[OutputResult]:
    """Reuse mode (own inputs or arguments): what was written, without comparing."""
    results = []
    for path in select_outputs(Path(actual_dir), output_paths):
        size, digest = _size_and_digest(Path(actual_dir) / path)
        results.append(OutputResult(path=path, status=PRODUCED, actual_size=size,
                                    actual_sha256=digest,
                                    details=["not compared: the replay used your own inputs "
                                             "or arguments"]))
    return results


def _size_and_digest(path: Path) -> tuple[int | None, str]:
    if path.is_symlink() and not path.exists():
        return None, ""
    return path.stat().st_size, sha256_file(path)


def compare_files(expected: Path, actual: Path, tolerance: Tolerance,
                  result: OutputResult) -> OutputResult:
    """Fill ``result`` with the verdict for one pair of files."""
    if result.expected_sha256 and result.expected_sha256 == result.actual_sha256:
        result.status, result.method = REPRODUCED, "bytes"
        result.details = ["identical bytes"]
        return result
    suffix = expected.suffix.lower()
    big = (result.expected_size or 0) > MAX_TEXT_BYTES or (result.actual_size or 0) > MAX_TEXT_BYTES
    if suffix == ".png":
        return _compare_png(expected, actual, result)
    if suffix in CONTENT_COMPARERS and not big:
        found = CONTENT_COMPARERS[suffix](expected, actual, tolerance)
        if found is not None:
            return _structured_verdict(result, *found)
    e_text = None if big else _read_text(expected)
    a_text = None if big else _read_text(actual)
    if e_text is None or a_text is None:
        return _binary_difference(expected, actual, result)
    structured: list[str] | None = None
    within = False
    if suffix in TEXT_SUFFIXES_CSV:
        structured, within = _compare_csv(e_text, a_text, TEXT_SUFFIXES_CSV[suffix], tolerance)
    elif suffix == ".ipynb":
        structured, within = formats.compare_notebook(e_text, a_text, tolerance.rel_tol,
                                                      tolerance.abs_tol)
        if structured is not None:
            return _structured_verdict(result, structured, within, tolerance, "notebook")
    elif suffix in (".json", ".geojson"):
        structured, within = _compare_json(e_text, a_text, tolerance)
    elif tolerance.declared:   # .dat, .txt, .out, …: whitespace- or tab-separated fields
        structured, within = formats.compare_fields(e_text, a_text, tolerance.rel_tol,
                                                    tolerance.abs_tol)
    if structured is not None:
        result.method = "numeric"
        if not structured and tolerance.declared:
            result.status = REPRODUCED
            result.details = [f"equal within {tolerance.describe()}"
                              + ("" if within else " (only formatting differs)")]
            return result
        if structured:
            result.status = DIFFERS
            result.details = structured
            return result
        # Same values but not the same bytes and no tolerance declared: show the text diff.
    result.status, result.method = DIFFERS, "text"
    result.details = _text_diff(e_text, a_text)
    return result


def _structured_verdict(result: OutputResult, differences: list[str], used: bool,
                        tolerance: Tolerance, method: str = "") -> OutputResult:
    """The verdict of a comparer that reads the content (not the bytes)."""
    result.method = method or result.method
    if differences:
        result.status, result.details = DIFFERS, differences
    else:
        result.status = REPRODUCED
        result.details = [f"equal within {tolerance.describe()}" if used else
                          SAME_CONTENT.get(result.method, "same content, other bytes")]
    return result


SAME_CONTENT = {
    "pdf": "same document (only its creation/modification dates or ID differ)",
    "array": "same values (only the file's bytes differ)",
    "notebook": "same cells and outputs (only counts, timings or metadata differ)",
}


def _pdf(expected: Path, actual: Path, tolerance: Tolerance):
    found = formats.compare_pdf(expected, actual)
    return None if found is None else (found, False, tolerance, "pdf")


def _array(compare):
    def run(expected: Path, actual: Path, tolerance: Tolerance):
        found, used = compare(expected, actual, tolerance.rel_tol, tolerance.abs_tol)
        return None if found is None else (found, used, tolerance, "array")
    return run


# Binary formats compared by content; each returns None when the file is not that format.
CONTENT_COMPARERS = {".pdf": _pdf, ".npy": _array(formats.compare_npy),
                     ".npz": _array(formats.compare_npz)}
# Formats where a numeric tolerance can apply (text files are decided by their content).
TOLERANT_SUFFIXES = {".csv", ".tsv", ".json", ".geojson", ".ipynb", ".npy", ".npz"}


def _read_text(path: Path) -> str | None:
    data = path.read_bytes()
    if b"\0" in data[:8192]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


# ----------------------------------------------------------------------- numbers

def _number(text: str) -> float | None:
    text = text.strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        return None


def _format(value: Any) -> str:
    if isinstance(value, str):
        return value if len(value) <= 60 else value[:57] + "..."
    return json.dumps(value) if not isinstance(value, float) else repr(value)


def _close(a: float, b: float, tolerance: Tolerance) -> bool:
    return formats.close(a, b, tolerance.rel_tol, tolerance.abs_tol)


def _compare_csv(expected: str, actual: str, delimiter: str,
                 tolerance: Tolerance) -> tuple[list[str] | None, bool]:
    """Differences cell by cell; (None, _) when the text is not a table.

    The second value says whether any numeric cell needed the tolerance.
    """
    try:
        e_rows = list(csv.reader(io.StringIO(expected), delimiter=delimiter))
        a_rows = list(csv.reader(io.StringIO(actual), delimiter=delimiter))
    except csv.Error:
        return None, False
    header = e_rows[0] if e_rows and any(_number(c) is None and c.strip() for c in e_rows[0]) \
        else None
    differences: list[str] = []
    used_tolerance = False
    if header is not None and (not a_rows or a_rows[0] != header):
        got = a_rows[0] if a_rows else []
        differences.append(f"header: {delimiter.join(header)!r} vs {delimiter.join(got)!r}")
    start = 1 if header is not None else 0
    if len(e_rows) != len(a_rows):
        differences.append(f"{len(e_rows) - start} rows vs {len(a_rows) - start} rows")
    for index in range(start, min(len(e_rows), len(a_rows))):
        e_row, a_row = e_rows[index], a_rows[index]
        row_label = f"row {index - start + 1}"
        if len(e_row) != len(a_row):
            differences.append(f"{row_label}: {len(e_row)} columns vs {len(a_row)} columns")
        for col in range(min(len(e_row), len(a_row))):
            name = header[col] if header is not None and col < len(header) else str(col + 1)
            e_cell, a_cell = e_row[col], a_row[col]
            if e_cell == a_cell:
                continue
            e_num, a_num = _number(e_cell), _number(a_cell)
            if e_num is not None and a_num is not None:
                if e_num == a_num:
                    continue  # same value, other spelling ("1.0" vs "1.00")
                if tolerance.declared and tolerance.applies_to(name) and _close(e_num, a_num, tolerance):
                    used_tolerance = True
                    continue
            differences.append(f"{row_label}, column {name}: {e_cell} vs {a_cell}")
            if len(differences) >= MAX_DIFFERENCES:
                differences.append("… (more differences not shown)")
                return differences, used_tolerance
    return differences, used_tolerance


def _compare_json(expected: str, actual: str,
                  tolerance: Tolerance) -> tuple[list[str] | None, bool]:
    try:
        e_doc, a_doc = json.loads(expected), json.loads(actual)
    except ValueError:
        return None, False
    differences: list[str] = []
    used = [False]

    def walk(e: Any, a: Any, where: str, key: str | None) -> None:
        if len(differences) > MAX_DIFFERENCES:
            return
        if isinstance(e, dict) and isinstance(a, dict):
            for k in e:
                if k not in a:
                    differences.append(f"{where}.{k}: present vs absent")
                else:
                    walk(e[k], a[k], f"{where}.{k}", k)
            for k in a:
                if k not in e:
                    differences.append(f"{where}.{k}: absent vs {_format(a[k])}")
            return
        if isinstance(e, list) and isinstance(a, list):
            if len(e) != len(a):
                differences.append(f"{where}: {len(e)} items vs {len(a)} items")
            for i, (ei, ai) in enumerate(zip(e, a)):
                walk(ei, ai, f"{where}[{i}]", key)
            return
        numeric = (isinstance(e, (int, float)) and isinstance(a, (int, float))
                   and not isinstance(e, bool) and not isinstance(a, bool))
        if numeric:
            if e == a:
                return
            if tolerance.declared and tolerance.applies_to(key) and _close(float(e), float(a), tolerance):
                used[0] = True
                return
        elif e == a and type(e) is type(a):
            return
        differences.append(f"{where}: {_format(e)} vs {_format(a)}")

    walk(e_doc, a_doc, "$", None)
    if len(differences) > MAX_DIFFERENCES:
        differences[MAX_DIFFERENCES:] = ["… (more differences not shown)"]
    return differences, used[0]


# ------------------------------------------------------------------------ images

def _compare_png(expected: Path, actual: Path, result: OutputResult) -> OutputResult:
    from PIL import Image, UnidentifiedImageError

    result.method = "pixels"
    try:
        with Image.open(expected) as e_img, Image.open(actual) as a_img:
            e_img.load()
            a_img.load()
            if e_img.size != a_img.size:
                result.status = DIFFERS
                result.details = [f"image size {e_img.size[0]}x{e_img.size[1]} vs "
                                  f"{a_img.size[0]}x{a_img.size[1]}"]
                return result
            mode = "RGBA" if "A" in (e_img.mode + a_img.mode) or "transparency" in \
                e_img.info or "transparency" in a_img.info else "RGB"
            e_px, a_px = e_img.convert(mode), a_img.convert(mode)
            if e_px.tobytes() == a_px.tobytes():
                result.status = REPRODUCED
                result.details = ["same pixels (only metadata chunks differ)"]
                return result
            width, bands = e_img.size[0], len(mode)
            e_bytes, a_bytes = e_px.tobytes(), a_px.tobytes()
            changed, first = 0, None
            for i in range(0, len(e_bytes), bands):
                ep, ap = e_bytes[i:i + bands], a_bytes[i:i + bands]
                if ep != ap:
                    changed += 1
                    if first is None:
                        pixel = i // bands
                        first = (pixel % width, pixel // width, tuple(ep), tuple(ap))
            total = e_img.size[0] * e_img.size[1]
            result.status = DIFFERS
            x, y, ep, ap = first
            result.details = [f"{changed} of {total} pixels differ",
                              f"first at x={x}, y={y}: {ep} vs {ap}"]
            return result
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        result.details = [f"not a readable PNG ({exc}); compared as bytes"]
        return _binary_difference(expected, actual, result, keep_details=True)


# -------------------------------------------------------------------------- text

def _text_diff(expected: str, actual: str, max_lines: int = 2 * MAX_DIFFERENCES) -> list[str]:
    e_lines, a_lines = expected.splitlines(), actual.splitlines()
    if e_lines == a_lines:
        return ["same lines, but line endings or the final newline differ"]
    out: list[str] = []
    matcher = difflib.SequenceMatcher(None, e_lines, a_lines, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        for offset in range(max(i2 - i1, j2 - j1)):
            e_line = e_lines[i1 + offset] if i1 + offset < i2 else None
            a_line = a_lines[j1 + offset] if j1 + offset < j2 else None
            number = (i1 + offset + 1) if e_line is not None else (j1 + offset + 1)
            if e_line is not None and a_line is not None:
                out.append(f"line {number}: {_format(e_line)!s} vs {_format(a_line)!s}")
            elif e_line is not None:
                out.append(f"line {number}: {_format(e_line)!s} vs (absent)")
            else:
                out.append(f"line {number}: (absent) vs {_format(a_line)!s}")
            if len(out) >= max_lines:
                out.append("… (more differences not shown)")
                return out
    return out


def _binary_difference(expected: Path, actual: Path, result: OutputResult,
                       keep_details: bool = False) -> OutputResult:
    result.status = DIFFERS
    result.method = result.method or "binary"
    offset = _first_differing_byte(expected, actual)
    lines = [f"{result.expected_size} bytes vs {result.actual_size} bytes"]
    if offset is not None:
        lines.append(f"first differing byte at offset {offset}")
    result.details = (result.details if keep_details else []) + lines
    return result


def _first_differing_byte(a: Path, b: Path) -> int | None:
    with open(a, "rb") as fa, open(b, "rb") as fb:
        position = 0
        while True:
            ca, cb = fa.read(1 << 16), fb.read(1 << 16)
            if ca != cb:
                for i, (x, y) in enumerate(zip(ca, cb)):
                    if x != y:
                        return position + i
                return position + min(len(ca), len(cb))
            if not ca:
                return None
            position += len(ca)


def rule_warnings(rules, results: Sequence[OutputResult], expected_dir: Path,
                  actual_dir: Path) -> list[str]:
    """Rules that cannot do what they say: matching no output, or giving a tolerance
    to files whose format has no numbers to tolerate (pictures, PDFs, binaries)."""
    warnings = []
    for rule in rules or ():
        matched = [r.path for r in results if matching_rule(r.path, [rule]) is rule]
        if not matched:
            warnings.append(f"the [[compare.rules]] rule for {rule.path!r} matches no output")
            continue
        if rule.ignore or (rule.rel_tol is None and rule.abs_tol is None):
            continue
        refused = [p for p in matched if not _takes_tolerance(p, expected_dir, actual_dir)]
        if refused and len(refused) == len(matched):
            shown = ", ".join(refused[:3]) + (", …" if len(refused) > 3 else "")
            warnings.append(f"the tolerance of the [[compare.rules]] rule for {rule.path!r} "
                            f"does not apply to {shown} (not numeric text, JSON, a notebook "
                            "or a NumPy array): compared exactly")
    return warnings


def _takes_tolerance(path: str, expected_dir: Path, actual_dir: Path) -> bool:
    suffix = PurePosixPath(path).suffix.lower()
    if suffix in TOLERANT_SUFFIXES:
        return True
    if suffix in (".png", ".pdf"):
        return False
    for folder in (expected_dir, actual_dir):
        file = Path(folder) / path
        if file.is_file():
            with open(file, "rb") as fh:
                head = fh.read(8192)
            try:
                head.decode("utf-8")
            except UnicodeDecodeError as exc:
                if exc.start < len(head) - 4:   # not just a character cut at 8 KiB
                    return False
            return b"\0" not in head
    return False


def summary(results: Sequence[OutputResult]) -> dict[str, int]:
    counts = {status: 0 for status in STATUSES}
    for r in results:
        counts[r.status] = counts.get(r.status, 0) + 1
    return counts


def all_reproduced(results: Sequence[OutputResult]) -> bool:
    """True when nothing differs or is missing (new and ignored files do not fail)."""
    return all(r.ok for r in results)
