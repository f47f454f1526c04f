"""Archiving bundles on Zenodo: plan, deposit (draft, publish, new version), resume.

``plan_deposit`` computes what will be sent without touching the network;
``run_deposit`` sends it. ``studypack.fetch.fetch_bundle`` is the way back.
"""

from .workflow import (DepositPlan, DepositResult, plan_deposit, run_deposit,  # noqa: F401
                       write_doi)
