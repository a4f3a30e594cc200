"""The benchmark measures like against like, and reads its goals right (no timing here)."""

import numpy as np
import pytest

from benchmarks.bench_layers import GRID, QUICK_GRID, _ours, _torch, summarize


@pytest.mark.parametrize("case", QUICK_GRID + [GRID[3], GRID[10]], ids=lambda c: f"{c[0]}-{c[4]}x{c[5]}")
def test_both_sides_of_the_benchmark_compute_the_same_gradients(case):
    ours = _ours(case)()
    theirs = [g.numpy() for g in _torch(case)()]
    ours = ours if isinstance(ours, tuple) else (ours,)
    # dx comes back in each library's layout: torch's NCHW is ours permuted.
    np.testing.assert_allclose(ours[0], theirs[0].transpose(2, 3, 1, 0), rtol=1e-12, atol=1e-12)
    if case[0] == "conv2d":
        np.testing.assert_allclose(ours[1], theirs[1].transpose(2, 3, 1, 0), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(ours[2], theirs[2], rtol=1e-12)


def test_the_summary_checks_both_goals():
    rows = [{"layer": "conv2d", "time_ratio": q} for q in (0.5, 0.9, 1.9)] + \
           [{"layer": "max_pool2d", "time_ratio": q} for q in (0.5, 2.5)]
    conv, pool = summarize(rows)
    assert "geometric-mean time ratio 0.95" in conv and "goal met" in conv
    assert "worst 2.50" in pool and "GOAL NOT MET" in pool
