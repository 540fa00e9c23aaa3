# SPDX-License-Identifier: Apache-2.0
"""The one-call training operations, bnorm.training_normalize and bnorm.training_backward:
against the float64 formulas, bitwise against the two-call engine functions they replace,
against the layer's gradients, in place and into out=, and their bad arguments."""

import numpy as np
import pytest

import bnorm
from conftest import assert_close, data

LAYOUTS = [((6, 5, 7), -1, (0, 1)), ((4, 6, 5, 7), 1, (0, 2, 3)), ((3, 4, 5, 6), [1, 2], (0, 3))]


def reference_forward(x, gamma, beta, epsilon, reduce):
    x64 = x.astype(np.float64)
    mean = x64.mean(axis=reduce, keepdims=True)
    variance = x64.var(axis=reduce, keepdims=True)
    y = (x64 - mean) / np.sqrt(variance + epsilon) * gamma + beta
    return y, mean, variance


def reference_backward(x, dy, mean, variance, gamma, epsilon, reduce):
    x64, dy64 = x.astype(np.float64), dy.astype(np.float64)
    n = x.size // mean.size
    xmu = x64 - mean
    rho = 1.0 / np.sqrt(variance + epsilon)
    sum_dy = dy64.sum(axis=reduce, keepdims=True)
    sum_dy_xmu = (dy64 * xmu).sum(axis=reduce, keepdims=True)
    dx = gamma * rho * (dy64 - sum_dy / n - xmu * rho ** 2 * sum_dy_xmu / n)
    return dx, sum_dy, sum_dy_xmu


def parameter(x, reduce, values):
    """values laid out with x's size 1 on the reduced axes, for broadcasting."""
    shape = [1 if i in reduce else s for i, s in enumerate(x.shape)]
    return np.asarray(values, np.float64).reshape(shape)


@pytest.mark.parametrize("shape, axis, reduce", LAYOUTS)
def test_training_normalize_is_the_float64_forward(shape, axis, reduce):
    x = data(shape, seed=1)
    channels = x.size // int(np.prod([shape[i] for i in reduce]))
    gamma = np.linspace(0.5, 2.0, channels).astype(np.float32)
    beta = np.linspace(-1.0, 1.0, channels).astype(np.float32)
    params = tuple(s for i, s in enumerate(shape) if i not in reduce)
    y, mean, variance = bnorm.training_normalize(x, gamma.reshape(params), beta.reshape(params),
                                                 epsilon=1e-3, axis=axis)
    y_ref, mean_ref, var_ref = reference_forward(x, parameter(x, reduce, gamma),
                                                 parameter(x, reduce, beta), 1e-3, reduce)
    assert y.dtype == np.float32 and y.shape == x.shape
    assert mean.dtype == np.float64 and variance.dtype == np.float64
    assert_close(y, y_ref)
    assert_close(mean, mean_ref, 1e-7)
    assert_close(variance, var_ref, 1e-6)


def test_training_normalize_is_moments_then_normalize_bitwise():
    x = data((4, 6, 5, 7), seed=2, center=1e3)
    y, mean, variance = bnorm.training_normalize(x, axis=1)
    mean2, variance2 = bnorm.moments(x, axis=1)
    np.testing.assert_array_equal(mean, mean2)
    np.testing.assert_array_equal(variance, variance2)
    scale = (1.0 / np.sqrt(variance + 1e-3)).astype(np.float32)
    np.testing.assert_array_equal(y, bnorm.normalize(x, mean, scale, np.zeros(6), axis=1))


def test_training_normalize_in_place_into_out_and_in_float16():
    x = data((8, 3), seed=3)
    expected, _, _ = bnorm.training_normalize(x)
    out = np.empty_like(x)
    y, _, _ = bnorm.training_normalize(x, out=out)
    assert y is out
    np.testing.assert_array_equal(out, expected)
    y, _, _ = bnorm.training_normalize(x, out=x)
    assert y is x
    np.testing.assert_array_equal(x, expected)
    half = data((16, 4), seed=4).astype(np.float16)
    y, mean, _ = bnorm.training_normalize(half)
    assert y.dtype == np.float16
    y_ref, mean_ref, _ = reference_forward(half, 1.0, 0.0, 1e-3, (0,))
    assert_close(y, y_ref, 2e-3)
    assert_close(mean, mean_ref, 1e-7)


@pytest.mark.parametrize("shape, axis, reduce", LAYOUTS)
def test_training_backward_is_the_float64_backward(shape, axis, reduce):
    x = data(shape, seed=5, center=50.0)
    dy = data(shape, seed=6, center=0.0, spread=1.0)
    channels = x.size // int(np.prod([shape[i] for i in reduce]))
    gamma = np.linspace(0.5, 2.0, channels).astype(np.float32)
    gamma = gamma.reshape(tuple(s for i, s in enumerate(shape) if i not in reduce))
    _, mean, variance = bnorm.training_normalize(x, gamma, axis=axis)
    dx, sum_dy, sum_dy_xmu = bnorm.training_backward(x, dy, mean, variance, gamma, axis=axis)
    m, v = parameter(x, reduce, mean), parameter(x, reduce, variance)
    dx_ref, s1_ref, s2_ref = reference_backward(x, dy, m, v, parameter(x, reduce, gamma), 1e-3,
                                                reduce)
    assert dx.dtype == np.float32 and dx.shape == x.shape
    assert sum_dy.dtype == np.float64 and sum_dy.shape == mean.shape
    assert_close(dx, dx_ref, 2e-4)
    assert_close(sum_dy, s1_ref, 1e-6 * np.sqrt(x.size))
    assert_close(sum_dy_xmu, s2_ref, 1e-6 * np.sqrt(x.size))


def test_training_backward_gives_the_layers_gradients():
    x = data((16, 5), seed=7)
    dy = data((16, 5), seed=8, center=0.0, spread=1.0)
    layer = bnorm.BatchNormalization()
    layer(x, training=True)
    dx_layer = layer.backward(dy)
    gamma = layer.get_weights()[0]
    _, mean, variance = bnorm.training_normalize(x, gamma)
    dx, sum_dy, sum_dy_xmu = bnorm.training_backward(x, dy, mean, variance, gamma)
    assert_close(dx, dx_layer, 1e-5)
    assert_close(sum_dy_xmu / np.sqrt(variance + 1e-3), layer.gradients["gamma"], 1e-5)
    assert_close(sum_dy, layer.gradients["beta"], 1e-5)


def test_training_backward_in_place_over_dy_and_x():
    x = data((8, 4, 3), seed=9)
    dy = data((8, 4, 3), seed=10, center=0.0)
    _, mean, variance = bnorm.training_normalize(x, axis=1)
    expected, _, _ = bnorm.training_backward(x, dy, mean, variance, axis=1)
    over_dy = dy.copy()
    result, _, _ = bnorm.training_backward(x, over_dy, mean, variance, axis=1, out=over_dy)
    assert result is over_dy
    np.testing.assert_array_equal(over_dy, expected)
    over_x = x.copy()
    bnorm.training_backward(over_x, dy, mean, variance, axis=1, out=over_x)
    np.testing.assert_array_equal(over_x, expected)


def test_bad_training_arguments():
    x = data((4, 3))
    dy = data((4, 3), seed=11)
    mean, variance = np.zeros(3), np.ones(3)
    cases = [
        (lambda: bnorm.training_normalize(x, epsilon=0.0), ValueError, "epsilon is 0"),
        (lambda: bnorm.training_normalize(x, epsilon="a"), TypeError, "epsilon"),
        (lambda: bnorm.training_normalize(x, gamma=np.ones(4)), ValueError, "gamma has shape (4,)"),
        (lambda: bnorm.training_normalize(x, axis=2), ValueError, "axis"),
        (lambda: bnorm.training_normalize(np.zeros((0, 3), np.float32)), ValueError,
         "0 values per channel"),
        (lambda: bnorm.training_normalize(x, out=np.zeros((4, 3))), TypeError,
         "out has dtype float64"),
        (lambda: bnorm.training_backward(x, dy.astype(np.float16), mean, variance), TypeError,
         "dy is float16"),
        (lambda: bnorm.training_backward(x, dy[:2], mean, variance), ValueError,
         "dy has shape (2, 3)"),
        (lambda: bnorm.training_backward(x, dy, np.zeros(4), variance), ValueError,
         "mean has shape (4,)"),
        (lambda: bnorm.training_backward(x, dy, mean, -variance), ValueError, "variance[0]"),
        (lambda: bnorm.training_backward(x, dy, mean, variance, epsilon=-1.0), ValueError,
         "epsilon"),
    ]
    for call, error, words in cases:
        with pytest.raises(error) as e:
            call()
        assert words in str(e.value), words


def test_partly_overlapping_out_is_rejected_and_nothing_written():
    buffer = np.zeros(13, np.float32)
    x = buffer[:12].reshape(4, 3)
    x[:] = data((4, 3))
    dy = data((4, 3), seed=12)
    before = buffer.copy()
    with pytest.raises(ValueError) as e:
        bnorm.training_normalize(x, out=buffer[1:].reshape(4, 3))
    assert "out overlaps x" in str(e.value)
    with pytest.raises(ValueError) as e:
        bnorm.training_backward(dy, x, np.zeros(3), np.ones(3), out=buffer[1:].reshape(4, 3))
    assert "out overlaps dy" in str(e.value)
    np.testing.assert_array_equal(buffer, before)
