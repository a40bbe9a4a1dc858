"""Hypothesis settings for the fuzz suite: a CI profile by default, a deep one on request.

``JOBQ_FUZZ_PROFILE=deep`` selects ten times as many examples (see docs/fuzzing.md). The
profiles are registered under their own names and applied per test, never loaded globally,
so the rest of the suite keeps its own Hypothesis settings.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, Phase, settings

PROFILE_ENV = "JOBQ_FUZZ_PROFILE"
PROFILES = {"ci": "jobq-fuzz-ci", "deep": "jobq-fuzz-deep"}

_COMMON = settings(
    deadline=None,
    database=None,
    print_blob=True,
    # The explain phase traces every line while shrinking: far too slow against a server.
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)
# Examples per unit of weight; each test asks for a multiple (see `fuzz_settings`).
settings.register_profile(PROFILES["ci"], _COMMON, max_examples=100)
settings.register_profile(PROFILES["deep"], _COMMON, max_examples=1000)


def profile_name() -> str:
    """The selected profile ("ci" unless JOBQ_FUZZ_PROFILE says otherwise)."""
    chosen = os.environ.get(PROFILE_ENV, "ci")
    if chosen not in PROFILES:
        raise ValueError(f"{PROFILE_ENV} must be one of {sorted(PROFILES)}, not {chosen!r}")
    return chosen


def fuzz_settings(weight: float) -> settings:
    """The selected profile with `weight` times its base number of examples."""
    base = settings.get_profile(PROFILES[profile_name()])
    return settings(base, max_examples=max(1, round(base.max_examples * weight)))
