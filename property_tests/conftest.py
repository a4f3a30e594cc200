"""Hypothesis profiles for the suite.

- ``ci`` (the default): derandomized, so every run draws the same examples and
  a green run stays green; bounded examples; no deadline, since a forward pass
  that is slow on a loaded 2-core machine is not a failure.
- ``thorough``: randomized, ten times the examples, for a deeper search.

Pick one with ``--hypothesis-profile=NAME`` (``make verify PROFILE=thorough``)
or the ``HYPOTHESIS_PROFILE`` environment variable.
"""

import os

from hypothesis import HealthCheck, settings

pytest_plugins = ["pytester"]

settings.register_profile(
    "ci", derandomize=True, max_examples=60, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "thorough", max_examples=600, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
