"""What the environment will be, shown before anything runs (the wizard's environment
page, ``studypack create``'s plan): one section per environment kind that applies.

Before the traced run, the Debian and R sections say what will be locked; after it
(``traced`` given), they list the packages the run used.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field

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


def preview_environment(spec, traced=None) -> EnvironmentPreview:
    """The environment of ``spec``'s study, from its command (and the traced run when
    ``traced``, a :class:`studypack.trace.TraceResult`, is given)."""
    programs = [r.executable or "" for r in traced.runs] if traced else [
        shutil.which(step.command[0]) or step.command[0] for step in spec.runs]
    python = None
    notes: list[str] = []
    try:
        python = detect_python(programs[0] if programs else None, spec,
                               opened=traced.opened if traced else None,
                               pythons=traced.pythons if traced else None, messages=notes)
    except Exception as exc:    # noqa: BLE001 (a study without Python still previews)
        notes.append(getattr(exc, "message", str(exc)))
    facts = StudyFacts(spec=spec, executables=programs,
                       packages=traced.packages if traced else [],
                       files=list(traced.files) if traced else [], python=python,
                       traced=traced is not None)
    result = EnvironmentPreview(python, python.describe() if python else
                                "; ".join(notes) or "no Python environment")
    for kind in KINDS:
        reason = kind.applies(facts)
        if reason is None or (kind.name == "debian" and not facts.traced
                              and "no dpkg" not in reason):
            result.sections.append(kind.preview(facts))
        else:
            result.not_applying[kind.name] = reason
    return result
