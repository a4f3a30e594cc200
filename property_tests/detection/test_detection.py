"""The detection rate of check_layer on realistic backprop bugs, case by case.

Every bug in the catalog (``mutants.CASES``, kind "bug") must make
``gradcheck.check_layer`` fail, and every correct layer evaluated at a hard
point (kind "correct": kinks, ties, saturation, dead units, coupled examples)
must pass. One test per case, so the pass count is the measured detection rate;
a second run forces central differences (no complex step) for every case that
central differences can judge.
"""

import numpy as np
import pytest

import gradcheck
from property_tests.detection.mutants import CASES, FAMILIES, FD_CANNOT_JUDGE, KINDS


def _build(case):
    layer, x = case.build(np.random.default_rng(0))
    # float64 everywhere, except the cases about lower precision.
    dtypes = {np.dtype(np.float64)} if case.family != "edge:precision" else \
        {np.dtype(np.float64), np.dtype(np.float16)}
    assert isinstance(x, np.ndarray) and x.dtype in dtypes
    assert all(v.dtype in dtypes for v in layer.params.values())
    return layer, x


# Hazard and low-precision cases warn by design; their verdicts are what is asserted.
_EXPECTED_WARNINGS = [pytest.mark.filterwarnings("ignore::gradcheck.HazardWarning"),
                      pytest.mark.filterwarnings("ignore::gradcheck.PrecisionWarning")]


@_EXPECTED_WARNINGS[0]
@_EXPECTED_WARNINGS[1]
@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_check_layer_fails_every_bug_and_passes_every_correct_layer(case, gradcheck_recorder):
    layer, x = _build(case)
    result = gradcheck.check_layer(layer, x)
    gradcheck_recorder.record_detection(case=case.name, family=case.family, kind=case.kind,
                                        oracle="auto (complex step where complex-safe)", result=result)
    if case.kind == "bug":
        assert not result.passed, (
            f"the bug {case.name!r} was NOT detected: {case.description}\n{result.message()}")
    elif case.kind == "hazard":
        assert result.passed and result.hazards, (
            f"the hazard {case.name!r} was not reported as one: {case.description}\n"
            f"{result.message()}")
    else:
        assert result.passed, (
            f"the correct layer {case.name!r} was wrongly rejected: {case.description}\n"
            f"{result.message()}")


FD_JUDGED = [case for case in CASES if case.name not in FD_CANNOT_JUDGE]
assert not FD_CANNOT_JUDGE, "every case, ties included, is judged by central differences"


@_EXPECTED_WARNINGS[0]
@_EXPECTED_WARNINGS[1]
@pytest.mark.parametrize("case", FD_JUDGED, ids=[case.name for case in FD_JUDGED])
def test_the_same_verdicts_with_finite_differences_as_the_only_oracle(case, gradcheck_recorder):
    # Layers that declare complex_safe (most reference layers and their
    # subclasses) are differentiated by complex step by default, which never
    # straddles a kink; forcing central differences checks that the verdicts
    # hold for the oracle every other layer gets, ties judged by their sums.
    layer, x = _build(case)
    result = gradcheck.check_layer(layer, x, complex_step=False)
    gradcheck_recorder.record_detection(case=case.name, family=case.family, kind=case.kind,
                                        oracle="central differences only", result=result)
    expected = case.kind != "bug"
    assert result.passed == expected and bool(result.hazards) == (case.kind == "hazard"), (
        f"{case.kind} {case.name!r} got passed={result.passed} with finite differences only: "
        f"{case.description}\n{result.message()}")


def test_the_catalog_is_large_and_realistic():
    bugs = [c for c in CASES if c.kind == "bug"]
    correct = [c for c in CASES if c.kind == "correct"]
    hazards = [c for c in CASES if c.kind == "hazard"]
    assert len(bugs) >= 30
    assert len(correct) >= 10
    assert len(hazards) >= 1
    assert len(bugs) + len(correct) + len(hazards) == len(CASES)
    assert {c.kind for c in CASES} <= set(KINDS)
    names = [c.name for c in CASES]
    assert len(set(names)) == len(names), "case names must be unique"
    assert {c.family for c in CASES} == set(FAMILIES), "every family represented"
    assert {c.family for c in bugs} == set(FAMILIES), "every family has at least one bug"
    for case in CASES:
        assert case.description.strip() and callable(case.build)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_every_case_is_small_and_rebuilt_fresh(case):
    layer, x = _build(case)
    assert x.size + sum(v.size for v in layer.params.values()) <= 500
    other, _ = _build(case)
    assert other is not layer
    assert all(other.params[k] is not v for k, v in layer.params.items())
