"""``studypack create``: one session of four steps, plan → trace → environment → pack.

:class:`CreateSession` (:mod:`.session`) is what the CLI and the wizard both drive;
:func:`plan_bundle` (:mod:`.layout`) decides what goes where in the bag.
"""

from .layout import EnvironmentPart, plan_bundle
from .session import (STEPS, CreateOptions, CreatePlan, CreateResult, CreateSession,
                      check_output, create_bundle, default_output)

__all__ = ["STEPS", "CreateOptions", "CreatePlan", "CreateResult", "CreateSession",
           "EnvironmentPart", "check_output", "create_bundle", "default_output",
           "plan_bundle"]
