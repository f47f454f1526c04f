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

from .capture import (EnvironmentCapture, bundle_build_context, capture_environment,
                      default_base_image, detect_python)
from .preview import EnvironmentPreview, preview_environment

__all__ = ["EnvironmentCapture", "EnvironmentPreview", "bundle_build_context",
           "capture_environment", "default_base_image", "detect_python",
           "preview_environment"]
