"""Hypothesis profiles for the reliability tests and how many examples each kind of property gets.

``ci`` (the default) keeps tests/reliability to a few minutes on 2 cores; ``long`` (``HYPOTHESIS_PROFILE=long``)
runs well over 10,000 cases in total. The profiles are applied per test through :func:`fuzz_settings`, so
loading this module never changes the hypothesis defaults of other test directories.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
if PROFILE not in ("ci", "long"):
    raise ValueError(f"HYPOTHESIS_PROFILE must be 'ci' or 'long', got {PROFILE!r}")

_SHARED = dict(
    deadline=None,  # the machine is shared; a hang is caught by pytest-timeout instead
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
    print_blob=True,
)
settings.register_profile("ci", max_examples=60, derandomize=True, database=None, **_SHARED)
settings.register_profile("long", max_examples=2500, derandomize=False, **_SHARED)

# Examples per property in each profile. "cheap": validation, tokenisation, fusion, stop filtering (no forward
# pass). "model": one small forward pass per example. "generate": a few decoded tokens per example.
EXAMPLES: dict[str, dict[str, int]] = {
    "ci": {"cheap": 60, "model": 6, "generate": 3},
    "long": {"cheap": 2500, "model": 120, "generate": 40},
}


def fuzz_settings(kind: str) -> settings:
    """Settings of the active profile with the example count for ``kind`` ("cheap", "model", "generate")."""
    return settings(settings.get_profile(PROFILE), max_examples=EXAMPLES[PROFILE][kind])


def long_profile() -> bool:
    return PROFILE == "long"


def time_limit(ci_seconds: int) -> int:
    """Per-test limit for pytest-timeout (a hang fails the test): ``ci_seconds`` in ci, far more in long."""
    return ci_seconds if PROFILE == "ci" else ci_seconds * 30
