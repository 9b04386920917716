"""Fuzzing every parser and decoder (issue 9): the kept corpora replayed, then a fixed budget of new inputs.

Each target (tests/fuzz/targets.py) must never crash nor raise anything but its module's documented error, and
must return well-typed output. The budget is a hypothesis profile chosen by CLAPAS_FUZZ_PROFILE: `ci` (the
default, about a minute for the whole suite on the reference machine), `smoke` (seconds) or `long`. Longer,
coverage-guided runs (atheris) are `bench/fuzz.py`; what they find is kept in tests/fuzz/corpus/<target>/ and
replayed here, so that every crash ever found stays a regression case.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz.strategies import strategies
from tests.fuzz.targets import TARGETS, corpus

_COMMON = {"deadline": None, "suppress_health_check": list(HealthCheck), "print_blob": True}
# make test / CI run a fixed sequence (derandomized: a submission's CI never fails on an input no one has seen);
# new inputs are the long profile's and bench/fuzz.py's job, and what they find is kept in the corpora
settings.register_profile("fuzz-smoke", max_examples=15, derandomize=True, **_COMMON)
settings.register_profile("fuzz-ci", max_examples=400, derandomize=True, **_COMMON)
settings.register_profile("fuzz-long", max_examples=5_000, **_COMMON)
PROFILE = os.environ.get("CLAPAS_FUZZ_PROFILE", "ci")
FUZZ = settings.get_profile(f"fuzz-{PROFILE}")
STRATEGIES = strategies()
# these targets compile or load files per input (QuickJS, TOML, YAML): a third of the examples keeps the budget
SLOW = {"codec_spec", "config"}

CASES = [(name, file) for name in sorted(TARGETS) for file, _ in corpus(name)]


def test_every_target_has_seeds_and_a_corpus():
    """Seeds come from the samples and fixtures; the corpus folders are in the repository."""
    for name, target in TARGETS.items():
        assert target.seeds(), f"{name} has no seed input"
        assert corpus(name), f"tests/fuzz/corpus/{name}/ is empty (run bench/fuzz.py --seed-corpus)"


@pytest.mark.parametrize(("name", "file"), CASES, ids=[f"{n}/{f}" for n, f in CASES])
def test_corpus_replays(name: str, file: str) -> None:
    """Every kept input, crashes found before included, keeps the target's property."""
    data = dict(corpus(name))[file]
    TARGETS[name].run(data)


@pytest.mark.parametrize("name", sorted(TARGETS))
@given(data=st.data())
@FUZZ
def test_fuzz(name: str, data: st.DataObject) -> None:
    if name in SLOW and data.draw(st.integers(0, 2), label="slow-skip"):
        return
    TARGETS[name].run(data.draw(STRATEGIES[name], label=name))
