"""The error metric at its edges (issue 13): all-zero gradients, no gradients at all, and
inputs of lower precision, whose relative errors are still computed in float64.
"""

import numpy as np

from gradcheck.metrics import error_floor, gradient_scale, relative_errors


def test_the_floor_of_all_zero_gradients_without_noise_is_the_smallest_normal_number():
    zeros = np.zeros(3)
    floor = error_floor([(zeros, zeros)], 0.0, 1e-6)
    assert floor == np.finfo(np.float64).tiny
    assert np.all(relative_errors(zeros, zeros, floor) == 0.0)


def test_the_scale_of_no_gradient_is_zero():
    assert gradient_scale([]) == 0.0
    assert gradient_scale([(np.array([np.nan]), np.array([np.inf]))]) == 0.0
    assert gradient_scale([(np.array([-3.0, 1.0]), np.array([2.0]))]) == 3.0


def test_relative_errors_of_float32_gradients_are_computed_in_float64():
    a, r = np.array([1.0], dtype=np.float32), np.array([3.0], dtype=np.float32)
    err = relative_errors(a, r, 1e-30)
    assert err.dtype == np.float64
    assert err[0] == 2.0 / 3.0
    err = relative_errors(r, a, np.float32(1e-30))
    assert err.dtype == np.float64 and err[0] == 2.0 / 3.0
