"""Entry script for the frozen GUI (PyInstaller needs a script, not a package)."""

import sys

from studypack_gui.app import main

sys.exit(main())
