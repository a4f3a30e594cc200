"""A grouping is blamed (GroupingWarning) only on evidence that it is wrong.

An output whose two probes give a ratio far from every member's is evidence;
an output bent by a kink within the step is not, and neither is one too noisy
to name its owner. A saturated softmax has both kinds of output: outputs near 1
whose change is a tiny difference of terms of size 1, where the ratio is known
only to ~1e-2, beside clear ones. The grouping (one entry per column: columns
are independent) is right, so it must not be blamed, whichever oracle probes it.
"""

import warnings

import numpy as np
import pytest

import gradcheck
from gradcheck import GroupingWarning
from reference_impls import Softmax

# Columns are examples: column 0 and 2 saturate (0.99999 and 0.978 at row 4).
SATURATED = np.array([[-13.9762, -12.0401, -13.0227],
                      [-6.2269, 14.4728, -16.0131],
                      [9.4397, 12.6247, -3.5546],
                      [-7.0094, 4.7211, 12.1456],
                      [21.5553, 8.9181, 15.9384]])


@pytest.mark.parametrize("complex_step", [True, False])
def test_a_right_grouping_of_a_saturated_softmax_is_not_blamed(complex_step):
    with warnings.catch_warnings():
        warnings.simplefilter("error", GroupingWarning)
        result = gradcheck.check_layer(Softmax(), SATURATED.copy(), complex_step=complex_step)
    assert result.passed


class _RowSoftmax(Softmax):
    """The reference softmax with a wrong grouping: a whole column in one group."""

    def jacobian_coloring(self, name, shape):
        return np.broadcast_to(np.arange(shape[1]), shape).copy()


def test_a_wrong_grouping_is_still_blamed():
    x = np.random.default_rng(0).normal(size=(4, 3))
    with pytest.warns(GroupingWarning, match="move a common output"):
        result = gradcheck.check_layer(_RowSoftmax(), x)
    assert result.passed          # checked entry by entry instead
