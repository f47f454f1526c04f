"""Entry script for the frozen command line `studypack` (PyInstaller needs a script)."""

import sys

from studypack.cli import main

sys.exit(main())
