# SPDX-License-Identifier: Apache-2.0
"""The NumPy oracle's backward is the derivative of its forward: central differences of
sum(dy * y) in float64, for each kind of option (ghost batches, renorm, adjustment, inference,
several axes). Renorm's r and d are constants of the gradient (Keras' stop_gradient): its
case clips both to constants so that the differences see them as such."""

import numpy as np
import pytest

import keras_oracle
from conftest import data

CASES = {
    "default": (dict(), (6, 3), True),
    "nchw_fused": (dict(axis=1), (3, 2, 2, 2), True),
    "ghost": (dict(virtual_batch_size=2), (6, 3), True),
    "renorm": (dict(renorm=True, renorm_clipping={"rmin": 1.2, "rmax": 1.2, "dmax": 0.1}),
               (6, 3), True),
    "adjustment": (dict(adjustment=lambda s: (np.full(s[-1:], 1.3), np.full(s[-1:], -0.2))),
                   (5, 2), True),
    "two_axes": (dict(axis=[1, 2]), (4, 2, 3), True),
    "inference": (dict(moving_mean_initializer=0.3, moving_variance_initializer=2.0), (5, 2),
                  False),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_backward_is_the_derivative_of_forward(name):
    kwargs, shape, training = CASES[name]
    o = keras_oracle.options(**kwargs)
    x = data(shape, 1).astype(np.float64)
    dy = data(shape, 2, center=0.0, spread=1.0).astype(np.float64)
    channels = int(np.prod([shape[a] for a in keras_oracle.feature_axes(o, len(shape))]))
    state = keras_oracle.initial_state(o, channels)
    state["gamma"] = state["gamma"] * 1.7
    state["beta"] = state["beta"] + 0.4
    if o["renorm"]:
        state["renorm_stddev"] = state["renorm_stddev"] * 0.8
    grads = keras_oracle.backward(o, x, dy, training, state)

    def loss(x_value, gamma=None, beta=None):
        s = dict(state)
        if gamma is not None:
            s["gamma"] = gamma
        if beta is not None:
            s["beta"] = beta
        y, _ = keras_oracle.forward(o, x_value, training, s)
        return float((dy * y).sum())

    h = 1e-6
    numeric = np.zeros_like(x)
    for i in np.ndindex(shape):
        e = np.zeros_like(x)
        e[i] = h
        numeric[i] = (loss(x + e) - loss(x - e)) / (2 * h)
    np.testing.assert_allclose(grads["dx"], numeric, atol=1e-6)
    for key in ("gamma", "beta"):
        numeric = np.zeros(channels)
        for c in range(channels):
            e = np.zeros(channels)
            e[c] = h
            plus = loss(x, **{key: state[key] + e})
            minus = loss(x, **{key: state[key] - e})
            numeric[c] = (plus - minus) / (2 * h)
        np.testing.assert_allclose(grads[key], numeric, atol=1e-6)
