"""The closer look at a disagreeing entry (gradcheck.numerical.refine), held to the bounds
a user relies on (issue 13): Richardson's estimate is O(h⁴) accurate, a smooth point is
never called a kink, a kink at or near the point always is, and a correct ReLU with
inputs within a step of 0 passes.
"""

import numpy as np
import pytest

import gradcheck
from gradcheck.numerical import STEP, entry_probe, refine, smooth_outputs


def _refine_exp(x0, h):
    x = np.array([x0])
    G = np.array([1.0])
    probe, _ = entry_probe(lambda: np.exp(x), x, (0,))
    return refine(probe, h, G, np.exp(x))


@pytest.mark.parametrize("x0", [-1.0, 0.3, 2.0])
def test_richardsons_estimate_is_within_h4_of_the_truth_and_converges_at_order_4(x0):
    # D(h) = f' + h² f'''/6 + h⁴ f⁽⁵⁾/120 + ...
    # so (4 D(h/2) - D(h)) / 3 = f' - h⁴ f⁽⁵⁾/480.
    truth = np.exp(x0)
    errors = []
    for h in (0.04, 0.02, 0.01):
        found = _refine_exp(x0, h)
        assert not found.kink
        assert found.calls == 4
        error = abs(found.estimate - truth)
        assert error <= 2 * h ** 4 * truth / 480 + 1e-13, (h, error)
        errors.append(error)
    # Halving h divides the error by 16 (a plain central difference: by 4).
    assert 12 < errors[0] / errors[1] < 20
    assert 12 < errors[1] / errors[2] < 20


def test_the_one_sided_slopes_bracket_the_derivative_at_a_smooth_point():
    found = _refine_exp(0.5, 0.01)
    assert found.low < np.exp(0.5) < found.high
    assert found.high - found.low == pytest.approx(0.01 * np.exp(0.5), rel=0.01)


def _smooth_layers(rng):
    """Random smooth functions of one entry, each output a user might write."""
    a, b = rng.uniform(-2, 2, size=2)
    return [
        lambda x: np.tanh(a * x + b),
        lambda x: np.exp(0.5 * a * x) * np.sin(x + b),
        lambda x: x ** 3 + a * x ** 2 + b * x,
        lambda x: np.log1p(np.exp(a * x)),
        lambda x: np.stack([np.sin(a * x), np.cos(b * x), 1.0 / (1.0 + x ** 2)]).reshape(-1),
    ]


def test_no_smooth_point_is_called_a_kink():
    rng = np.random.default_rng(13)
    kinks = 0
    for _ in range(40):
        for f in _smooth_layers(rng):
            x = rng.uniform(-3, 3, size=1)
            y0 = f(x)
            G = rng.standard_normal(y0.shape)
            probe, h = entry_probe(lambda f=f, x=x: f(x), x, (0,))
            found = refine(probe, h, G, y0)
            kinks += found.kink
    assert kinks == 0


@pytest.mark.parametrize("offset", [0.0, 0.3, -0.7, 1e-3, -1e-2])
def test_a_relu_at_or_within_a_step_of_its_kink_is_a_kink_with_both_slopes(offset):
    h = STEP
    x = np.array([offset * h])
    probe, _ = entry_probe(lambda: np.maximum(x, 0.0), x, (0,))
    found = refine(probe, h, np.array([2.0]), np.maximum(x, 0.0))
    assert found.kink
    # The one-sided slopes span what a valid (sub)gradient may be: 0 and 2 at the kink
    # itself, averages of them when it is within the step.
    assert 0.0 <= found.low < found.high <= 2.0 + 1e-9
    if offset == 0.0:
        assert (found.low, found.high) == pytest.approx((0.0, 2.0), abs=1e-9)


def test_an_abs_kink_within_a_step_is_found_though_each_side_looks_straight():
    # |x - c| with c at a quarter step: the slopes at ±h/2 agree with those at ±h on
    # the left, the right side bends at c: only the least-squares residual sees it.
    h = STEP
    x = np.array([0.0])
    c = 0.75 * h
    probe, _ = entry_probe(lambda: np.abs(x - c) + 3.0 * x, x, (0,))
    found = refine(probe, h, np.array([1.0]), np.abs(x - c) + 3.0 * x)
    assert found.kink
    assert found.low == pytest.approx(2.0, abs=1e-3)
    assert found.high == pytest.approx(2.5, abs=1e-3)


def test_smooth_outputs_flags_a_bent_output_and_keeps_straight_ones():
    h = 1e-5
    x = np.array([0.3, -0.2, 0.5 * h, 1.0])
    relu_like = lambda t: np.maximum(t, 0.0) + np.sin(t)   # noqa: E731
    y_plus, y_minus, y0 = relu_like(x + h), relu_like(x - h), relu_like(x)
    assert smooth_outputs(y_plus, y_minus, y0).tolist() == [True, True, False, True]
    # y± = ±1, y0 = -b: a bend of 2b against a change of 2; 1e-3 of it is the limit
    # (1e-7 where asked, for a step 10^4 smaller).
    one = np.array([1.0])
    assert smooth_outputs(one, -one, -0.9e-3 * one)[0]
    assert not smooth_outputs(one, -one, -1.1e-3 * one)[0]
    assert smooth_outputs(one, -one, -0.9e-7 * one, bend=1e-7)[0]
    assert not smooth_outputs(one, -one, -1.1e-7 * one, bend=1e-7)[0]


class UserReLU:
    """A user's ReLU: dx = dout where x > 0."""

    params, grads = {}, {}

    def forward(self, x):
        self.x = x
        return np.maximum(x, 0.0)

    def backward(self, dout):
        return dout * (self.x > 0)


@pytest.mark.parametrize("complex_step", [False, None])
def test_a_correct_relu_with_inputs_within_a_step_of_zero_passes(complex_step):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(4, 6))
    # A third of the inputs within one step of the kink, on both sides, and some at it.
    near = rng.uniform(-0.9, 0.9, size=8) * STEP
    x.reshape(-1)[:8] = near
    x.reshape(-1)[8:10] = 0.0
    result = gradcheck.check_layer(UserReLU(), x, complex_step=complex_step, mode="full")
    assert result.passed, result.message()
    assert result.nondifferentiable["x"] >= 8


def test_a_wrong_relu_near_zero_still_fails():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(4, 6))
    x.reshape(-1)[:8] = rng.uniform(-0.9, 0.9, size=8) * STEP

    class HalfSlope(UserReLU):
        def backward(self, dout):
            return 0.5 * dout * (self.x > 0)

    result = gradcheck.check_layer(HalfSlope(), x, mode="full")
    assert not result.passed


# ---- refine's two kink tests at their edges (its docstring's rules, noise and all) ----
# A probe of Δ(t) = <dout, y(t) - y0> written directly, in exact binary steps: h = 2^-17.

H2 = 2.0 ** -17


def _refined(delta, noise=0.0):
    """refine() of a one-output function whose change at t is ``delta(t)``."""
    return refine(lambda t: (np.array([delta(t)]), t), H2, np.ones(1), np.zeros(1),
                  noise=noise)


@pytest.mark.parametrize("curvature, kink", [(0.98, True), (1.02, False)])
def test_a_kink_at_the_point_is_a_jump_over_8_times_the_bend_along_the_sides(curvature, kink):
    """Δ = t + k|t| + c t²: slopes jump by 2k + c h between the sides at ±h/2, and bend by
    c h/2 along each: a kink when 2k + c h > 8 c h, i.e. c h < 2k/7. k = 1e-4 is far below
    what the residual test sees (1e-3 of the slope), so the jump decides alone."""
    k = 1e-4
    c = curvature * (2 * k / 7) / H2
    found = _refined(lambda t: t + k * abs(t) + c * t * t)
    assert found.kink is kink


@pytest.mark.parametrize("factor, kink", [(0.95, True), (1.05, False)])
def test_a_jump_must_also_exceed_the_rounding_noise_of_the_slopes(factor, kink):
    """A straight kink (no bend) of jump 2k against noise σ: a kink when 2k > 8σ / (h/2)."""
    k = 1e-4
    found = _refined(lambda t: t + k * abs(t), noise=factor * k * H2 / 8)
    assert found.kink is kink


@pytest.mark.parametrize("factor, kink", [(1.005, True), (0.995, False)])
def test_a_kink_within_a_step_is_a_residual_over_100_times_the_noise(factor, kink):
    """Δ = t + r·v(t), v = (1, -2, 2, -1) at t = (-h, -h/2, h/2, h): v is orthogonal to t
    and t², so the fit leaves exactly r·√10, and the sides do not jump. With σ = 1e-9,
    100σ is above 1e-3·h·(largest slope): a kink when r√10 > 100σ."""
    sigma = 1e-9
    r = factor * 100 * sigma / np.sqrt(10)
    v = {-H2: 1.0, -H2 / 2: -2.0, H2 / 2: 2.0, H2: -1.0}
    found = _refined(lambda t: t + r * v[t], noise=sigma)
    assert found.kink is kink


def test_at_a_kink_the_estimate_is_the_mean_of_the_one_sided_slopes():
    """relu(t - h/4): slopes 0, 0, 1/2, 3/4 (left at h, h/2, right at h/2, h)."""
    found = _refined(lambda t: max(t - H2 / 4, 0.0))
    assert found.kink
    assert found.estimate == pytest.approx((0 + 0 + 0.5 + 0.75) / 4, abs=1e-12)
    assert (found.low, found.high) == (0.0, 0.75)


def test_the_footprint_is_every_output_any_probe_moved():
    """relu(-x) at x = 1e-7 moves only on the left; 3x on both sides; 5 on neither."""
    x = np.array([1e-7])
    probe, h = entry_probe(lambda: np.array([max(-x[0], 0.0), 3 * x[0], 5.0]), x, (0,))
    found = refine(probe, h, np.ones(3), np.array([0.0, 3e-7, 5.0]))
    assert found.moved.tolist() == [True, True, False]
