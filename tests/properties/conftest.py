"""Hypothesis profiles for the property suite.

* ``ci`` (used when CI=true, and by default): few examples, no deadline, derandomized so a CI
  run is reproducible; the whole suite stays well under 90 s on 2 cores.
* ``dev``: long local runs (HYPOTHESIS_PROFILE=dev python -m pytest tests/properties).

A failing example is printed (hypothesis ``note``) as a case file to paste into tests/cases/.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_SLOW_OK = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]

settings.register_profile("ci", max_examples=10, deadline=None, derandomize=True, database=None,
                          suppress_health_check=_SLOW_OK, print_blob=True)
settings.register_profile("dev", max_examples=400, deadline=None, suppress_health_check=_SLOW_OK, print_blob=True)

_chosen = os.environ.get("HYPOTHESIS_PROFILE")
if not _chosen:
    _chosen = "ci"  # CI=true and plain local runs alike; "dev" only on request
settings.load_profile(_chosen)
