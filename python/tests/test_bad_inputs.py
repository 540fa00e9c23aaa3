# SPDX-License-Identifier: Apache-2.0
"""Every rejected input raises TypeError or ValueError naming the argument, and leaves the
layer's variables (and a given out= array) as they were."""

import numpy as np
import pytest

import bnorm
from conftest import data


def built_layer(**kwargs):
    layer = bnorm.BatchNormalization(**kwargs)
    layer(data((8, 3)), training=True)
    return layer


def assert_unchanged(layer, before):
    after = layer.get_weights()
    assert len(after) == len(before)
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("x, error, words", [
    (np.ones((8, 3), np.complex64), TypeError, "x has dtype complex64"),
    (np.ones((8, 3), bool), TypeError, "x has dtype bool"),
    (np.array([["a", "b", "c"]]), TypeError, "x has dtype <U1"),
    (None, TypeError, "x has dtype object"),
    (object(), TypeError, "x has dtype object"),
    ([[1.0, 2.0], [3.0]], TypeError, "x is a list"),
    (np.ones((8, 3, 1), np.float32), ValueError, "rank 3"),
    (np.ones(3, np.float32), ValueError, "rank 1"),
    (np.ones((8, 4), np.float32), ValueError, "shape[1] is 4"),
])
def test_bad_x_is_rejected_and_changes_nothing(x, error, words):
    layer = built_layer()
    before = layer.get_weights()
    with pytest.raises(error) as e:
        layer(x, training=True)
    assert words in str(e.value)
    assert_unchanged(layer, before)


@pytest.mark.parametrize("kwargs, error, words", [
    (dict(axis="last"), TypeError, "axis is a str"),
    (dict(axis=[]), ValueError, "axis is an empty list"),
    (dict(momentum=1.5), ValueError, "momentum is 1.5"),
    (dict(momentum="high"), TypeError, "momentum is a str"),
    (dict(epsilon=0.0), ValueError, "epsilon is 0"),
    (dict(epsilon=float("nan")), ValueError, "epsilon is nan"),
    (dict(center=1), TypeError, "center is a int"),
    (dict(scale=None), TypeError, "scale is a NoneType"),
    (dict(gamma_initializer="glorot_uniform"), ValueError, "gamma_initializer is 'glorot_uniform'"),
    (dict(beta_initializer=[1.0]), ValueError, "beta_initializer"),
    (dict(gamma_regularizer="l2"), ValueError, "gamma_regularizer is set"),
    (dict(beta_constraint=3), TypeError, "beta_constraint is a int"),
    (dict(renorm=True, renorm_clipping={"rmax": 1.0, "foo": 2.0}), ValueError, "'foo'"),
    (dict(renorm=True, renorm_clipping=[1.0]), TypeError, "renorm_clipping is a list"),
    (dict(renorm=True, renorm_clipping={"dmax": -1.0}), ValueError, "renorm_clipping['dmax']"),
    (dict(renorm=True, renorm_momentum=-0.5), ValueError, "renorm_momentum is -0.5"),
    (dict(fused="yes"), TypeError, "fused is a str"),
    (dict(fused=True, renorm=True), ValueError, "renorm"),
    (dict(fused=True, virtual_batch_size=2), ValueError, "virtual_batch_size"),
    (dict(fused=True, synchronized=True), ValueError, "synchronized"),
    (dict(fused=True, adjustment=lambda s: (1.0, 0.0)), ValueError, "adjustment"),
    (dict(virtual_batch_size=0), ValueError, "virtual_batch_size is 0"),
    (dict(virtual_batch_size=2.0), TypeError, "virtual_batch_size is a float"),
    (dict(virtual_batch_size=2, adjustment=lambda s: (1.0, 0.0)), ValueError, "adjustment"),
    (dict(adjustment="scale"), TypeError, "adjustment is a str"),
    (dict(trainable="no"), TypeError, "trainable is a str"),
    (dict(synchronized=1), TypeError, "synchronized is a int"),
    (dict(name=3), TypeError, "name is a int"),
    (dict(dtype="float16"), ValueError, "dtype is 'float16'"),
])
def test_bad_option_is_rejected(kwargs, error, words):
    with pytest.raises(error) as e:
        bnorm.BatchNormalization(**kwargs)
    assert words in str(e.value)


@pytest.mark.parametrize("kwargs, shape, words", [
    (dict(axis=5), (8, 3), "axis 5"),
    (dict(axis=[1, 1]), (8, 3, 2), "axis"),
    (dict(fused=True), (8, 3), "rank 2"),
    (dict(fused=True, axis=2), (2, 3, 4, 5), "axis"),
    (dict(virtual_batch_size=3), (8, 3), "virtual_batch_size"),
    (dict(virtual_batch_size=2, axis=0), (8, 3), "batch axis 0"),
])
def test_option_rejected_by_the_input_changes_nothing(kwargs, shape, words):
    layer = bnorm.BatchNormalization(**kwargs)
    with pytest.raises(ValueError) as e:
        layer(data(shape), training=True)
    assert words in str(e.value)
    # Unbuilt, or built with the initial values (the batch does not divide into ghosts).
    for w, initial in zip(layer.get_weights(), [1.0, 0.0, 0.0, 1.0]):
        np.testing.assert_array_equal(w, initial)


def test_raising_constraint_propagates_and_changes_nothing():
    class Refused(Exception):
        pass

    def refuse(values):
        raise Refused("no")

    layer = built_layer(beta_constraint=refuse)
    before = layer.get_weights()
    new = [w + 1.0 for w in before]
    with pytest.raises(Refused):
        layer.set_weights(new)
    assert_unchanged(layer, before)


def test_constraint_with_a_wrong_result_is_rejected():
    layer = built_layer(gamma_constraint=lambda w: w[:2])
    before = layer.get_weights()
    with pytest.raises(ValueError) as e:
        layer.set_weights([w + 1.0 for w in before])
    assert "gamma_constraint's result has shape (2,)" in str(e.value)
    assert_unchanged(layer, before)


def test_raising_adjustment_propagates_and_changes_nothing():
    def refuse(shape):
        raise KeyError("adjustment refused")

    layer = built_layer(adjustment=lambda s: (1.0, 0.0))
    before = layer.get_weights()
    layer_refusing = bnorm.BatchNormalization(adjustment=refuse)
    with pytest.raises(KeyError):
        layer_refusing(data((8, 3)), training=True)
    assert [w[0] for w in layer_refusing.get_weights()] == [1.0, 0.0, 0.0, 1.0]
    bad = bnorm.BatchNormalization(adjustment=lambda s: (np.ones(2), 0.0))
    with pytest.raises(ValueError) as e:
        bad(data((8, 3)), training=True)
    assert "adjustment's scale has shape (2,)" in str(e.value)
    assert_unchanged(layer, before)


@pytest.mark.parametrize("weights, error, words", [
    ("weights", TypeError, "weights is a str"),
    ([np.ones(3)] * 3, ValueError, "weights has 3 arrays; the layer has 4 weights"),
    ([np.ones(3)] * 3 + [np.ones(4)], ValueError, "weights[3] (moving_variance) has shape (4,)"),
    ([np.ones(3)] * 3 + [np.ones(3, complex)], TypeError, "weights[3] (moving_variance) has dtype"),
    ([np.ones(3), np.ones(3), np.ones(3), -np.ones(3)], None, None),
])
def test_bad_weights_change_nothing(weights, error, words):
    layer = built_layer()
    before = layer.get_weights()
    if error is None:
        layer.set_weights(weights)  # a negative variance is the caller's to choose
        return
    with pytest.raises(error) as e:
        layer.set_weights(weights)
    assert words in str(e.value)
    assert_unchanged(layer, before)


def test_set_weights_before_build():
    layer = bnorm.BatchNormalization()
    with pytest.raises(ValueError) as e:
        layer.set_weights([np.ones(3)] * 4)
    assert "not built" in str(e.value)


def test_bad_backward_changes_nothing():
    layer = bnorm.BatchNormalization()
    with pytest.raises(ValueError) as e:
        layer.backward(np.ones((8, 3), np.float32))
    assert "forward call first" in str(e.value)
    layer(data((8, 3)), training=True)
    layer.backward(data((8, 3), 5))
    gradients = {k: v.copy() for k, v in layer.gradients.items()}
    for dy, error, words in [(np.ones((8, 4), np.float32), ValueError, "dy"),
                             (np.ones((8, 3), np.float16), TypeError, "dy is float16"),
                             ("dy", TypeError, "dy has dtype <U2")]:
        with pytest.raises(error) as e:
            layer.backward(dy)
        assert words in str(e.value)
        for k, v in gradients.items():
            np.testing.assert_array_equal(layer.gradients[k], v)


def test_bad_training_flag_and_trainable():
    layer = built_layer()
    with pytest.raises(TypeError) as e:
        layer(data((8, 3)), training="yes")
    assert "training is a str" in str(e.value)
    with pytest.raises(TypeError) as e:
        layer.trainable = 0
    assert "trainable is a int" in str(e.value)
    assert layer.trainable is True


def test_bad_engine_arguments():
    x = data((4, 3))
    out = np.zeros((4, 3), np.float32)
    params = (np.zeros(3), np.ones(3), np.zeros(3))
    cases = [
        (lambda: bnorm.normalize(x, *params, out=np.zeros((4, 3))), TypeError, "out has dtype float64"),
        (lambda: bnorm.normalize(x, *params, out=np.zeros((3, 4), np.float32)), ValueError, "out has shape (3, 4)"),
        (lambda: bnorm.normalize(x, *params, out=np.zeros((3, 4), np.float32).T), ValueError, "out is not C-contiguous"),
        (lambda: bnorm.normalize(x, *params, out=[0.0]), TypeError, "out is a list"),
        (lambda: bnorm.normalize(x, np.zeros(4), params[1], params[2]), ValueError, "mean has shape (4,)"),
        (lambda: bnorm.normalize(x, *params, activation="gelu"), ValueError, "activation is 'gelu'"),
        (lambda: bnorm.normalize(x, *params, axis=2), ValueError, "axis"),
        (lambda: bnorm.moments(np.zeros((0, 3), np.float32)), ValueError, "no values per channel"),
        (lambda: bnorm.fold(None, None, np.zeros(3), np.ones(4)), ValueError, "moving_variance has shape (4,)"),
        (lambda: bnorm.fold(None, None, np.zeros(3), -np.ones(3)), ValueError, "variance"),
        (lambda: bnorm.fold(None, None, np.zeros(3), np.ones(3), epsilon=0.0), ValueError, "epsilon"),
        (lambda: bnorm.fold_into_weights(np.ones((3, 2)), np.zeros(3, np.float32), None, None,
                                         np.zeros(3), np.ones(3)), TypeError, "weights has dtype float64"),
        (lambda: bnorm.fold_into_weights(np.ones((3, 2), np.float32), np.zeros(2, np.float32), None,
                                         None, np.zeros(3), np.ones(3)), ValueError, "bias has 2 values"),
        (lambda: bnorm.fold_into_weights(np.ones((3, 2), np.float32), np.zeros(3, np.float32), None,
                                         None, np.zeros(3), np.ones(3), layout="oihw"), ValueError, "layout is 'oihw'"),
        (lambda: bnorm.force_target("avx9000"), ValueError, "avx9000"),
        (lambda: bnorm.set_max_threads(-1), ValueError, "n is -1"),
    ]
    for call, error, words in cases:
        with pytest.raises(error) as e:
            call()
        assert words in str(e.value), words
    np.testing.assert_array_equal(out, 0.0)


def test_partly_overlapping_out_is_rejected():
    buffer = np.zeros(13, np.float32)
    x = buffer[:12].reshape(4, 3)
    x[:] = data((4, 3))
    before = buffer.copy()
    with pytest.raises(ValueError) as e:
        bnorm.normalize(x, np.zeros(3), np.ones(3), np.zeros(3), out=buffer[1:].reshape(4, 3))
    assert "out overlaps x" in str(e.value)
    np.testing.assert_array_equal(buffer, before)
