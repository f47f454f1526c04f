"""What the environment will be, shown before anything runs (the wizard's environment
page, ``studypack create``'s plan): one section per environment kind that applies.

Before the traced run, the Debian and R sections say what will be locked; after it
(``traced`` given), they list the packages the run used.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import StudypackError
from .detect import PythonEnvironment
from .kinds import KINDS, Preview, StudyFacts
from .capture import detect_python


@dataclass
class EnvironmentPreview:
    python: PythonEnvironment | None            # None: the run starts no Python
    description: str                            # "a virtualenv at … (CPython 3.11.2, …)"
    sections: list[Preview] = field(default_factory=list)     # registry order
    not_applying: dict[str, str] = field(default_factory=dict)  # kind → why not

    def section(self, kind: str) -> Preview | None:
        return next((s for s in self.sections if s.kind == kind), None)


def preview_environment(spec, traced=None,
                        only: tuple[str, ...] | None = None) -> EnvironmentPreview:
    """The environment of ``spec``'s study, from its command (and the traced run when
    ``traced``, a :class:`studypack.trace.TraceResult`, is given); ``only`` limits it to
    those kinds (e.g. ``("debian", "r")``)."""
    if traced:
        programs = [r.executable or "" for r in traced.runs]
    else:   # found as the run will find them (the spec's Python first on PATH)
        from ..trace import resolve_executable, run_environment

        env = run_environment(spec)
        programs = [resolve_executable(step.command[0], spec.root / step.workdir, env)
                    or step.command[0] for step in spec.runs]
    python = None
    notes: list[str] = []
    try:
        # Before the run, a program that is not Python (make, Rscript) gives no Python:
        # the traced run will say whether it starts one.
        python = detect_python(programs[0] if programs else None, spec,
                               opened=traced.opened if traced else set(),
                               pythons=traced.pythons if traced else [], messages=notes)
        if python is None and not traced:
            notes[:] = [f"{programs[0]} is not Python: the traced run will show whether it "
                        "starts a Python, which is then locked"]
    except StudypackError as exc:   # a study without a Python still previews
        notes.append(exc.message)
    facts = StudyFacts(spec=spec, executables=programs,
                       packages=traced.packages if traced else [],
                       files=list(traced.files) if traced else [], python=python,
                       traced=traced is not None)
    result = EnvironmentPreview(python, python.describe() if python else
                                "; ".join(notes) or "no Python environment")
    for kind in KINDS:
        if only is not None and kind.name not in only:
            continue
        reason = kind.applies(facts)
        if reason is None or kind.previews_untraced(facts, reason):
            result.sections.append(kind.preview(facts))
        else:
            result.not_applying[kind.name] = reason
    return result
