"""The speculative wheel downloads during the run stop short of a huge environment:
sizes come from the distributions' real RECORD files."""

from __future__ import annotations

from pathlib import Path

from studypack.environment.piplock import Distribution
from studypack.environment.plan import installed_bytes, speculative_choice

MB = 1024 * 1024


def dist(tmp: Path, name: str, sizes: list[int]) -> Distribution:
    info = tmp / f"{name}-1.0.dist-info"
    info.mkdir()
    rows = [f"{name}/f{i}.py,sha256=x,{size}" for i, size in enumerate(sizes)]
    rows += [f"{name}-1.0.dist-info/RECORD,,", f"{name}/__pycache__/f0.cpython-311.pyc,,"]
    (info / "RECORD").write_text("\n".join(rows) + "\n")
    return Distribution(name, "1.0", location=str(info))


def test_installed_bytes_sums_the_record(tmp_path):
    assert installed_bytes(dist(tmp_path, "demo", [10, 20, 30])) == 60
    assert installed_bytes(Distribution("egg", "1.0", location=str(tmp_path / "none"))) == 0


def test_a_huge_distribution_is_not_downloaded_on_speculation(tmp_path):
    small = dist(tmp_path, "six", [1 * MB])
    medium = dist(tmp_path, "numpy", [40 * MB, 20 * MB])
    huge = dist(tmp_path, "torch", [900 * MB, 800 * MB])
    chosen = speculative_choice([huge, small, medium], max_each=300 * MB,
                                max_total=1024 * MB)
    assert [d.name for d in chosen] == ["six", "numpy"]   # the plan's order is kept


def test_the_total_is_capped_smallest_first(tmp_path):
    dists = [dist(tmp_path, f"p{i}", [size * MB]) for i, size in enumerate([50, 10, 30, 20])]
    chosen = speculative_choice(dists, max_each=300 * MB, max_total=60 * MB)
    assert [d.name for d in chosen] == ["p1", "p2", "p3"]      # 10 + 20 + 30 MB
