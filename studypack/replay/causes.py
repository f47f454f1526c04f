"""Why an output was not reproduced.

A replay compares its outputs with the original run's. When something differs, a second
replay in the same mode (the same image, the same traced files) tells the two usual
reasons apart:

- ``nondeterministic``: the replays disagree with each other — the study gives another
  result each time (a clock, an unseeded random draw, a race between threads);
- ``environment``: the replays agree with each other but not with the original run —
  something of the machine or the software changed (see ``environment_diff``);
- ``missing``: the original run wrote the file, the replay did not;
- ``failed-run``: a recorded command failed, so its outputs could not be compared.
"""

from __future__ import annotations

from typing import Sequence

from .compare import DIFFERS, FAILING, MISSING, OutputResult

NONDETERMINISTIC = "nondeterministic"
ENVIRONMENT = "environment"
MISSING_OUTPUT = "missing"
FAILED_RUN = "failed-run"
CAUSES = (NONDETERMINISTIC, ENVIRONMENT, MISSING_OUTPUT, FAILED_RUN)

SENTENCES = {
    NONDETERMINISTIC: "nondeterministic — another replay gave yet another result",
    ENVIRONMENT: "environment — the replays agree with each other, not with the original "
                 "run (see what changed)",
    MISSING_OUTPUT: "missing — the replay did not write this file",
    FAILED_RUN: "failed run — a recorded command failed before this output was made",
}
UNDETERMINED = ("not repeated (--repeat 1): whether the study or the environment changed "
                "it is not known")


def assign_causes(outputs: Sequence[OutputResult], repeats: Sequence[Sequence[OutputResult]],
                  failed_run: bool) -> None:
    """Set ``cause`` (and a first detail line saying it) on every output that was not
    reproduced. ``repeats`` holds, per extra replay, the comparison of its outputs with
    the first replay's; empty when the replay was not repeated."""
    unstable = {r.path for comparison in repeats for r in comparison if r.status in FAILING
                or r.status == "new"}
    for output in outputs:
        if output.status not in FAILING:
            continue
        if failed_run:
            output.cause = FAILED_RUN
        elif output.status == MISSING:
            output.cause = NONDETERMINISTIC if output.path in unstable else MISSING_OUTPUT
        elif output.status == DIFFERS and repeats:
            output.cause = NONDETERMINISTIC if output.path in unstable else ENVIRONMENT
        else:
            output.cause = None
        sentence = SENTENCES[output.cause] if output.cause else UNDETERMINED
        output.details = [f"cause: {sentence}"] + list(output.details)


def needs_repeat(outputs: Sequence[OutputResult], failed_run: bool) -> bool:
    """By default a replay is repeated once, and only when some output differs."""
    return not failed_run and any(o.status == DIFFERS for o in outputs)


def cause_counts(outputs: Sequence[OutputResult]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for output in outputs:
        if output.cause:
            counts[output.cause] = counts.get(output.cause, 0) + 1
    return counts
