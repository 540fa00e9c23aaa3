# SPDX-License-Identifier: Apache-2.0
"""The engine functions: moments, fold, normalize (out=, in place, fused activations, the
float64 mean split), fold_into_weights, the target registry and set_max_threads."""

import numpy as np
import pytest

import bnorm
from conftest import assert_close, data


def test_moments_match_numpy_in_every_layout():
    x = data((4, 3, 5, 6))
    for axis, reduce in [(-1, (0, 1, 2)), (1, (0, 2, 3)), ([1, 2], (0, 3))]:
        mean, variance = bnorm.moments(x, axis=axis)
        x64 = x.astype(np.float64)
        assert mean.dtype == np.float64
        assert_close(mean, x64.mean(axis=reduce), 1e-7)
        assert_close(variance, x64.var(axis=reduce), 1e-6)


def test_moments_stay_exact_when_the_mean_dwarfs_the_spread():
    x = data((64, 2), center=1e4, spread=1e-2)
    mean, variance = bnorm.moments(x)
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(variance, x64.var(axis=0), rtol=1e-6)


def test_fold_then_normalize_is_the_inference_layer():
    layer = bnorm.BatchNormalization(axis=1)
    x = data((2, 3, 4, 5))
    layer(x, training=True)
    expected = layer(x, training=False)
    gamma, beta, mean, variance = layer.get_weights()
    scale, shift = bnorm.fold(gamma, beta, mean, variance, epsilon=1e-3)
    y = bnorm.normalize(x, mean, scale, shift, axis=1)
    np.testing.assert_array_equal(y, expected)


def test_fold_is_gamma_over_the_standard_deviation():
    scale, shift = bnorm.fold(None, None, np.zeros(2), np.array([3.0, 0.0]), epsilon=1.0)
    np.testing.assert_allclose(scale, [0.5, 1.0])
    np.testing.assert_array_equal(shift, [0.0, 0.0])


@pytest.mark.parametrize("activation, clip", [(None, None), ("relu", (0, None)),
                                              ("relu6", (0, 6))])
def test_normalize_fuses_the_activation(activation, clip):
    x = data((16, 4), spread=6.0, center=2.0)
    mean, scale, shift = np.full(4, 0.5), np.full(4, 1.5), np.full(4, 0.25)
    y = bnorm.normalize(x, mean.astype(np.float32), scale, shift, activation=activation)
    expected = (x.astype(np.float64) - 0.5) * 1.5 + 0.25
    if clip:
        expected = np.clip(expected, clip[0], clip[1])
    assert_close(y, expected)


def test_normalize_in_place_and_into_out():
    x = data((8, 3))
    expected = bnorm.normalize(x, np.full(3, 1.0, np.float32), np.ones(3), np.zeros(3))
    out = np.empty_like(x)
    assert bnorm.normalize(x, np.full(3, 1.0, np.float32), np.ones(3), np.zeros(3),
                           out=out) is out
    np.testing.assert_array_equal(out, expected)
    y = bnorm.normalize(x, np.full(3, 1.0, np.float32), np.ones(3), np.zeros(3), out=x)
    assert y is x
    np.testing.assert_array_equal(x, expected)


@pytest.mark.parametrize("axis", [-1, 1])
def test_normalize_adds_a_residual_before_the_activation(axis):
    x = data((4, 6, 5, 7), spread=3.0, center=1.0)
    z = data((4, 6, 5, 7), spread=2.0, center=-0.5)
    channels = x.shape[axis]
    mean = np.linspace(0.5, 1.5, channels).astype(np.float32)
    scale, shift = np.full(channels, 1.25), np.full(channels, -0.25)
    y = bnorm.normalize(x, mean, scale, shift, axis=axis, activation="relu", residual=z)
    at = [1] * 4
    at[axis] = channels
    affine = (x.astype(np.float64) - mean.reshape(at)) * 1.25 - 0.25
    assert_close(y, np.maximum(affine + z, 0.0))
    # Bitwise normalize, then a float32 add and the ReLU.
    y0 = bnorm.normalize(x, mean, scale, shift, axis=axis)
    np.testing.assert_array_equal(y, np.maximum(y0 + z, np.float32(0)))


def test_normalize_residual_in_place_and_its_errors():
    x, z = data((8, 3)), data((8, 3), center=2.0)
    mean, scale, shift = np.zeros(3, np.float32), np.ones(3), np.zeros(3)
    expected = bnorm.normalize(x, mean, scale, shift, residual=z)
    accumulate = z.copy()
    assert bnorm.normalize(x, mean, scale, shift, residual=accumulate, out=accumulate) is accumulate
    np.testing.assert_array_equal(accumulate, expected)
    with pytest.raises(ValueError, match="residual has shape"):
        bnorm.normalize(x, mean, scale, shift, residual=data((3, 8)))
    with pytest.raises(TypeError, match="residual has dtype float16; expected x's float32"):
        bnorm.normalize(x, mean, scale, shift, residual=z.astype(np.float16))
    out = np.zeros(30, np.float32)
    with pytest.raises(ValueError, match="out overlaps residual"):
        bnorm.normalize(x, mean, scale, shift, residual=out[:24].reshape(8, 3),
                        out=out[3:27].reshape(8, 3))
    np.testing.assert_array_equal(out, np.zeros(30, np.float32))


def test_normalize_keeps_the_digits_of_a_float64_mean():
    x = data((32, 2), center=1e4, spread=1e-2)
    mean, variance = bnorm.moments(x)
    scale = 1.0 / np.sqrt(variance)
    y = bnorm.normalize(x, mean, scale, np.zeros(2))
    expected = (x.astype(np.float64) - mean) * scale
    assert_close(y, expected, 1e-5)


@pytest.mark.parametrize("layout", ["output_first", "output_last"])
def test_fold_into_weights_matches_the_layer(layout):
    rng = np.random.default_rng(3)
    w = rng.standard_normal((4, 6)).astype(np.float32)  # [out, in]
    bias = rng.standard_normal(4).astype(np.float32)
    inputs = rng.standard_normal((10, 6)).astype(np.float32)
    gamma, beta = rng.random(4) + 0.5, rng.standard_normal(4)
    mean, variance = rng.standard_normal(4), rng.random(4) + 0.5
    z = inputs.astype(np.float64) @ w.T.astype(np.float64) + bias
    expected = (z - mean) / np.sqrt(variance + 1e-3) * gamma + beta
    weights = np.ascontiguousarray(w if layout == "output_first" else w.T)
    folded_bias = bias.copy()
    assert bnorm.fold_into_weights(weights, folded_bias, gamma, beta, mean, variance,
                                   layout=layout) is None
    w2 = weights if layout == "output_first" else weights.T
    assert_close(inputs.astype(np.float64) @ w2.T.astype(np.float64) + folded_bias, expected,
                 1e-5)


def test_targets_can_be_forced_and_agree():
    names = bnorm.targets()
    assert names and names[-1] == "scalar"
    x = data((64, 5))
    results = []
    try:
        for name in names:
            bnorm.force_target(name)
            assert bnorm.active_target() == name
            results.append(bnorm.BatchNormalization()(x, training=True))
    finally:
        bnorm.reset_target()
    assert bnorm.active_target() == names[0]
    for name, y in zip(names, results):
        assert_close(y, results[-1], 1e-5, what=name)


def test_thread_counts_give_bitwise_equal_results():
    x = data((64, 64, 8, 8))  # 1 MiB of float32 and more: large enough to run on threads
    results = []
    try:
        for n in (1, 2, 0):
            bnorm.set_max_threads(n)
            layer = bnorm.BatchNormalization(axis=1)
            y = layer(x, training=True)
            dx = layer.backward(x)
            results.append((y, dx, layer.gradients["gamma"], layer.get_weights()[3]))
    finally:
        bnorm.set_max_threads(0)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)
