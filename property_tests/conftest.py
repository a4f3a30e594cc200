"""Hypothesis profiles for the suite.

- ``ci`` (the default): derandomized, so every run draws the same examples and
  a green run stays green; bounded examples; no deadline, since a forward pass
  that is slow on a loaded 2-core machine is not a failure.
- ``thorough``: randomized, ten times the examples, for a deeper search.

Pick one with ``--hypothesis-profile=NAME`` (``make verify PROFILE=thorough``)
or the ``HYPOTHESIS_PROFILE`` environment variable.

``GRADCHECK_MAX_EXAMPLES=N`` (set by ``gradcheck verify --examples N``) gives
both profiles ``max_examples=N`` instead, their other settings unchanged; tests
with their own ``@settings(max_examples=...)`` keep theirs.
"""

import os

from hypothesis import HealthCheck, settings

pytest_plugins = ["pytester"]

#: The environment variable that overrides the profiles' max_examples.
MAX_EXAMPLES_ENV = "GRADCHECK_MAX_EXAMPLES"


def _max_examples(default):
    text = os.environ.get(MAX_EXAMPLES_ENV, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"{MAX_EXAMPLES_ENV} must be a positive integer, got {text!r}")
    return value


settings.register_profile(
    "ci", derandomize=True, max_examples=_max_examples(60), deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "thorough", max_examples=_max_examples(600), deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
