"""``python -m studypack_gui`` is ``studypack-gui``."""

import sys

from .app import main

sys.exit(main())
