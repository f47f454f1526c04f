"""studypack: package, verify, replay and archive reproducible research studies.

The core library never imports Qt; the GUI (``studypack_gui``) and the CLI
(``studypack.cli``) are thin callers of the same functions.
"""

__version__ = "0.1.0"
