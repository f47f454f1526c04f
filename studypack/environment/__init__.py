"""The study's software environment: detected, locked, vendored, rendered, built.

- :mod:`.kinds` — the environment kinds (Debian packages, conda, virtualenv, system
  Python, R), one class each, in one ordered registry;
- :mod:`.capture` — :func:`capture_environment`, what ``studypack create`` calls;
- :mod:`.detect`, :mod:`.piplock`, :mod:`.condalock`, :mod:`.debian`, :mod:`.rlang` —
  each kind's detection, lock and vendoring;
- :mod:`.preview` — :func:`preview_environment`, what the wizard shows before the run;
- :mod:`.dockerfile` — the Dockerfile, a pure render of the kinds' install steps;
- :mod:`.baseimage` — a Debian base image made here when none can be pulled.
"""

# Loaded on first use (PEP 562): the plan step of ``create`` needs the planning modules
# only, not the container engine (the docker SDK) that capture imports.
_EXPORTS = {"EnvironmentCapture": "capture", "bundle_build_context": "capture",
            "capture_environment": "capture", "default_base_image": "capture",
            "detect_python": "capture", "EnvironmentPreview": "preview",
            "preview_environment": "preview"}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
