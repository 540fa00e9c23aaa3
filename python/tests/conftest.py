# SPDX-License-Identifier: Apache-2.0
"""Shared helpers of the module's tests: seeded data, tolerances, and running the layer next
to the float64 oracle (keras_oracle.py)."""

import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))

import keras_oracle  # noqa: E402

# float32 arithmetic against float64: relative to the values' own magnitude.
TOLERANCE = 2e-5


def assert_close(actual, expected, tol=TOLERANCE, what=""):
    actual = np.asarray(actual, np.float64).ravel()
    expected = np.asarray(expected, np.float64).ravel()
    assert actual.shape == expected.shape, what
    scale = max(1.0, float(np.abs(expected).max(initial=0.0)))
    np.testing.assert_allclose(actual, expected, rtol=0, atol=tol * scale, err_msg=what)


def data(shape, seed=0, center=1.5, spread=2.0, dtype=np.float32):
    """x with a mean and spread of its own per value, from a seeded generator."""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) * spread + center).astype(dtype)


def weights_dict(layer, o):
    """get_weights by name, for the oracle's options `o`."""
    names = ["gamma", "beta", "moving_mean", "moving_variance", "moving_stddev",
             "renorm_mean", "renorm_stddev"]
    present = [n for n in names
               if (n != "gamma" or o["scale"]) and (n != "beta" or o["center"])
               and (not n.startswith(("moving_stddev", "renorm")) or o["renorm"])]
    return dict(zip(present, layer.get_weights()))


def check_against_oracle(layer_kwargs, shape, calls, seed=0, tol=TOLERANCE):
    """Runs bnorm.BatchNormalization(**layer_kwargs) and the oracle through `calls` (a list
    of training flags) on fresh data each, comparing y, every variable and the backward of
    each call."""
    import bnorm  # pylint: disable=import-outside-toplevel
    layer = bnorm.BatchNormalization(**layer_kwargs)
    o = keras_oracle.options(**layer_kwargs)
    state = None
    for step, training in enumerate(calls):
        x = data(shape, seed + step)
        dy = data(shape, seed + 100 + step, center=0.0, spread=1.0)
        y = layer(x, training=training)
        if state is None:
            state = keras_oracle.initial_state(o, int(np.prod(layer.get_weights()[-1].shape)))
        before = {k: v.copy() for k, v in state.items()}
        y_ref, state = keras_oracle.forward(o, x, training, state)
        assert y.dtype == np.float32 and y.shape == x.shape
        assert_close(y, y_ref, tol, f"y of call {step}")
        for name, value in weights_dict(layer, o).items():
            assert_close(value, state[name], tol, f"{name} after call {step}")
        dx = layer.backward(dy)
        grads = keras_oracle.backward(o, x, dy, training, before)
        assert_close(dx, grads.pop("dx"), tol * 10, f"dx of call {step}")
        assert sorted(layer.gradients) == sorted(grads), f"gradient keys of call {step}"
        for name, value in grads.items():
            # Parameter gradients are sums over the batch: relative to the sum of magnitudes.
            assert_close(layer.gradients[name], value, tol * 10 * np.sqrt(x.size),
                         f"d{name} of call {step}")
    return layer


@pytest.fixture
def bnorm_module():
    import bnorm  # pylint: disable=import-outside-toplevel
    return bnorm
