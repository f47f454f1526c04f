"""File names in the replay report's table are never cut: two long names that differ at
their end stay two different rows on a narrow terminal (a log, a CI job)."""

from __future__ import annotations

import io

from rich.console import Console

from studypack.replay import ReplayResult
from studypack.replay.compare import OutputResult
from studypack.replay.report import render_terminal


def test_long_output_names_are_folded_not_cut():
    names = ["results/simulation_of_the_rod_with_the_finest_grid_and_long_name_A.csv",
             "results/simulation_of_the_rod_with_the_finest_grid_and_long_name_B.csv"]
    result = ReplayResult(mode="directory", mode_reason="no engine", compared=True,
                          outputs=[OutputResult(n, "reproduced", ["identical bytes"])
                                   for n in names], bundle="b.studypack", study="rod")
    buffer = io.StringIO()
    render_terminal(result, Console(file=buffer, width=40, color_system=None))
    first_column = "".join(line.split("│")[1].strip()
                           for line in buffer.getvalue().splitlines() if line.startswith("│"))
    for name in names:
        assert name in first_column
