"""Diagnosis: the message says what the error looks like."""

import numpy as np
import pytest

import gradcheck
from gradcheck.diagnosis import diagnose
from reference_impls import Conv2D, Dense, MSELoss
from reference_impls.conv import conv2d_backward, conv2d_forward


class Scaled(Dense):
    factor = 2.0

    def backward(self, dout):
        dx = super().backward(dout)
        self.grads["W"] = self.factor * self.grads["W"]
        return dx


class Negated(Scaled):
    factor = -1.0


class Transposed(Dense):
    def backward(self, dout):
        dx = super().backward(dout)
        self.grads["W"] = self.grads["W"].T.copy()
        return dx


class MSEOverM(MSELoss):
    """Divides by m twice."""

    def backward(self, dout=1.0):
        return super().backward(dout) / self.Y.shape[1]


class ConvWithoutRot180(Conv2D):
    """dW right, dA_prev with the kernel not rotated (eq. 37 without ROT180)."""

    def backward(self, dout):
        super().backward(dout)
        W = self.params["W"][::-1, ::-1].copy()
        _, cache = conv2d_forward(self._last_x, W, self.params["b"], padding=1)
        return conv2d_backward(dout, cache)[0]

    def forward(self, x):
        self._last_x = x
        return super().forward(x)


class MissingTranspose(Dense):
    def backward(self, dout):
        super().backward(dout)
        return self.params["W"] @ dout


class WrongInOneExample(Dense):
    def backward(self, dout):
        dx = super().backward(dout)
        dx[:, 1] *= 3.0
        return dx


class WrongAtBorders(Conv2D):
    def backward(self, dout):
        dx = super().backward(dout)
        dx[[0, -1]] *= 1.5          # the padding ring, as if cropped wrongly
        dx[1:-1, [0, -1]] *= 1.5
        return dx


def _check(layer, x):
    return gradcheck.check_layer(layer, x, complex_step=False)


def _rng(seed=0):
    return np.random.default_rng(seed)


@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda r: (Scaled(r.normal(size=(3, 4)), r.normal(size=(3, 1))), r.normal(size=(4, 5))),
         "a constant factor: analytic ≈ 2 × numeric"),
        (lambda r: (Negated(r.normal(size=(3, 4)), r.normal(size=(3, 1))), r.normal(size=(4, 5))),
         "a sign flip: analytic ≈ -1 × numeric"),
        (lambda r: (Transposed(r.normal(size=(4, 4)), r.normal(size=(4, 1))), r.normal(size=(4, 5))),
         "a transpose: analytic ≈ numeric with axes 0 and 1 swapped"),
        (lambda r: (MSEOverM(r.normal(size=(3, 5))), r.normal(size=(3, 5))),
         "= 1/5, one over x.shape[1]"),
        (lambda r: (ConvWithoutRot180(r.normal(size=(3, 3, 1, 1)), r.normal(size=1), padding=1),
                    r.normal(size=(5, 5, 1, 1))),
         "analytic ≈ the gradient of the same layer with 'W' rotated by 180° over axes (0, 1)"),
        (lambda r: (MissingTranspose(r.normal(size=(4, 4)), r.normal(size=(4, 1))),
                    r.normal(size=(4, 5))),
         "analytic ≈ the gradient of the same layer with 'W' with axes 0 and 1 swapped"),
        (lambda r: (WrongInOneExample(r.normal(size=(3, 4)), r.normal(size=(3, 1))),
                    r.normal(size=(4, 5))),
         "errors only at index 1 of axis 1 (1 of 5: examples of the batch?)"),
        (lambda r: (WrongAtBorders(r.normal(size=(3, 3, 1, 1)), r.normal(size=1), padding=1),
                    r.normal(size=(6, 6, 1, 1))),
         "errors only within 1 of the borders of axes (0, 1)"),
    ],
    ids=["factor-2", "sign", "transpose", "one-over-m", "rot180", "dx-missing-transpose",
         "one-example", "borders"],
)
def test_the_failure_message_diagnoses_the_error(make, expected):
    layer, x = make(_rng())
    result = _check(layer, x)
    assert not result.passed
    assert expected in result.message(), result.message()


def test_a_few_wrong_entries_are_listed_by_index():
    a = np.arange(1.0, 13.0).reshape(3, 4)
    r = a.copy()
    r[1, 2] += 1.0
    mismatch = np.abs(a - r) > 1e-6
    assert diagnose(a, r, mismatch) == ["only 1 entry wrong: (1, 2)"]


def test_a_periodic_pattern_is_named():
    a = np.ones((8, 3))
    r = a.copy()
    r[1::2] += 1.0
    assert "every 2th index of axis 0" in " ".join(diagnose(a, r, a != r))


def test_nothing_is_claimed_for_a_correct_gradient():
    a = np.ones((3, 3))
    assert diagnose(a, a, np.zeros((3, 3), bool)) == []


def test_a_border_needs_an_inside_to_be_a_border():
    a = np.ones((5, 3))
    r = a.copy()
    r[0, :] += 1.0
    r[:, 0] += 1.0
    r[4, :] += 1.0
    assert not any("borders" in d for d in diagnose(a, r, a != r))
    big = np.ones((6, 6))
    r = big.copy()
    r[0, :] += 1.0
    r[:, 5] += 1.0
    assert any("borders" in d for d in diagnose(big, r, big != r))


def test_a_failure_against_torch_names_torch_not_numeric():
    pytest.importorskip("torch")
    rng = _rng()
    layer = Scaled(rng.normal(size=(3, 4)), rng.normal(size=(3, 1)))
    result = gradcheck.check_layer(layer, rng.normal(size=(4, 5)),
                                   torch_fn=lambda x, p: p["W"] @ x + p["b"])
    by_oracle = {c.oracle: c for c in result.failures()}
    assert "analytic ≈ 2 × torch" in by_oracle["torch"].diagnosis[0]
    assert "× numeric" in by_oracle["complex_step"].diagnosis[0]


def test_a_difference_constant_along_an_axis_is_named_as_a_missing_mean_term():
    rng = _rng()
    r = rng.normal(size=(4, 6))
    a = r + np.array([0.3, -0.1, 0.2, 0.5, -0.4, 0.1])     # one offset per column
    text = " ".join(diagnose(a, r, np.abs(a - r) > 1e-6))
    assert "analytic − numeric is the same along axis 0 (4 entries each)" in text


def test_gradients_lost_to_an_overwrite_are_named():
    r = np.arange(1.0, 13.0).reshape(3, 4)
    a = r.copy()
    a[:, :2] = 0.0                     # half the entries never written
    text = " ".join(diagnose(a, r, a != r))
    assert "analytic is 0 at 6 of the 6 wrong entries where numeric is not" in text


def test_a_gradient_with_no_pattern_still_gets_a_sentence_that_is_true():
    rng = _rng()
    r = rng.normal(size=(3, 5))
    a = r + rng.normal(size=(3, 5))
    mismatch = np.abs(a - r) > 1e-6
    (sentence,) = diagnose(a, r, mismatch, label="torch")
    larger = int(np.sum(np.abs(a) > np.abs(r)))
    assert sentence.startswith(f"{int(mismatch.sum())} of 15 entries differ")
    assert f"analytic is larger in magnitude at {larger} of them" in sentence
    assert "torch's sign" in sentence


def test_a_softmax_taken_as_diagonal_is_named():
    def softmax(z):
        e = np.exp(z - z.max(axis=1, keepdims=True))
        s = e / e.sum(axis=1, keepdims=True)
        return s, s

    def diagonal_only(dout, s):
        return dout * s * (1 - s)                # the elementwise shortcut

    z = _rng().normal(size=(3, 4))
    result = gradcheck.check_function(softmax, diagonal_only, z)
    (failure,) = result.failures()
    assert failure.diagnosis[0].startswith("analytic ≈ only the diagonal of the Jacobian")


def test_batch_statistics_treated_as_constants_are_recognized():
    from property_tests.detection.mutants import CASES

    (case,) = [c for c in CASES if c.name == "batchnorm_backward_statistics_constant"]
    layer, x = case.build(np.random.default_rng(0))
    failure = gradcheck.check_layer(layer, x, complex_step=False).failures()[0]
    assert failure.tensor == "x"
    assert "a constant plus a multiple of the input in every slice" in failure.diagnosis[0]


@pytest.mark.parametrize("case_name, tensor, shift", [
    ("conv_dx_crop_padding_plus_one", "x", "(-1, -1)"),
    ("conv_dx_crop_padding_minus_one", "x", "(1, 1)"),
])
def test_a_gradient_moved_by_one_entry_is_named_as_an_off_by_one(case_name, tensor, shift):
    from property_tests.detection.mutants import CASES

    (case,) = [c for c in CASES if c.name == case_name]
    layer, x = case.build(np.random.default_rng(0))
    (failure,) = [f for f in gradcheck.check_layer(layer, x).failures() if f.tensor == tensor]
    assert failure.diagnosis[0].startswith(f"analytic ≈ numeric moved by {shift} along axes (0, 1)")


def test_a_gradient_that_is_not_moved_is_not_called_moved():
    r = np.arange(36.0).reshape(6, 6)
    assert not any("moved by" in d for d in diagnose(2 * r, r, r != 0))
