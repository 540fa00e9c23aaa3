# SPDX-License-Identifier: Apache-2.0
"""Keras' BatchNormalization in NumPy float64, as docs/semantics.md (and SPEC) write it: the
oracle the module's tests compare against. It shares no code with bnorm (the C++ oracle is
src/oracle/keras_reference.cc); test_oracle.py checks its backward against finite differences
of its forward. Options are the layer's keyword arguments; it assumes they are valid."""

import numpy as np

DEFAULTS = dict(axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True,
                beta_initializer="zeros", gamma_initializer="ones",
                moving_mean_initializer="zeros", moving_variance_initializer="ones",
                renorm=False, renorm_clipping=None, renorm_momentum=0.99, fused=None,
                trainable=True, virtual_batch_size=None, adjustment=None, synchronized=False)
FUSED_MIN_EPSILON = 1.001e-5


def options(**kwargs):
    o = dict(DEFAULTS)
    o.update(kwargs)
    return o


def _value(initializer):
    if isinstance(initializer, dict):
        return {"Zeros": 0.0, "Ones": 1.0}.get(initializer["class_name"],
                                               initializer.get("config", {}).get("value"))
    return {"zeros": 0.0, "ones": 1.0}.get(initializer, initializer)


def feature_axes(o, rank):
    axis = o["axis"] if isinstance(o["axis"], (list, tuple)) else [o["axis"]]
    return sorted(a % rank for a in axis)


def uses_fused(o, rank):
    if o["fused"] is False or o["renorm"] or o["virtual_batch_size"] or o["adjustment"]:
        return False
    if o["synchronized"] or rank not in (4, 5):
        return False
    axes = feature_axes(o, rank)
    return len(axes) == 1 and axes[0] in (1, rank - 1)


def epsilon(o, rank):
    return max(o["epsilon"], FUSED_MIN_EPSILON) if uses_fused(o, rank) else o["epsilon"]


def initial_state(o, channels):
    state = {
        "gamma": np.full(channels, _value(o["gamma_initializer"]) if o["scale"] else 1.0),
        "beta": np.full(channels, _value(o["beta_initializer"]) if o["center"] else 0.0),
        "moving_mean": np.full(channels, float(_value(o["moving_mean_initializer"]))),
        "moving_variance": np.full(channels, float(_value(o["moving_variance_initializer"]))),
    }
    if o["renorm"]:
        stddev = np.sqrt(state["moving_variance"])
        state["moving_stddev"] = stddev.copy()
        state["renorm_mean"] = state["moving_mean"].copy()
        state["renorm_stddev"] = stddev.copy()
    return state


class _View:
    """x as [V, G, M, C]: sample b = v * G + g is in ghost g (b mod G), M the other reduced
    elements of a sample, C the channels (feature axes flattened in order)."""

    def __init__(self, o, shape, train):
        self.shape = tuple(shape)
        self.axes = feature_axes(o, len(shape))
        self.others = [a for a in range(len(shape)) if a not in self.axes]
        self.channels = int(np.prod([shape[a] for a in self.axes]))
        batched = bool(self.others) and self.others[0] == 0
        batch = shape[0] if batched else 1
        self.ghosts = batch // o["virtual_batch_size"] if train and o["virtual_batch_size"] else 1
        rest = int(np.prod([shape[a] for a in self.others])) // max(batch, 1) if batch else 0
        self.grouped = (batch // self.ghosts if self.ghosts else 0, self.ghosts, rest,
                        self.channels)

    def split(self, x):
        t = np.transpose(np.asarray(x, np.float64), self.others + self.axes)
        return t.reshape(self.grouped)

    def join(self, v):
        t = v.reshape([self.shape[a] for a in self.others + self.axes])
        return np.transpose(t, np.argsort(self.others + self.axes))


def _clip(value, low, high):
    if low is not None:
        value = np.maximum(value, low)
    if high is not None:
        value = np.minimum(value, high)
    return value


def _training_constants(o, x, view, state, eps):
    """Per group (ghost, channel) mean and variance; per channel r, d, adjustment."""
    mean = x.mean(axis=(0, 2))
    var = ((x - mean[None, :, None, :]) ** 2).mean(axis=(0, 2))
    new_mean, new_var = mean.mean(axis=0), var.mean(axis=0)
    stddev = np.sqrt(new_var + eps)
    c = view.channels
    adj_scale, adj_bias = np.ones(c), np.zeros(c)
    if o["adjustment"] is not None:
        s, b = o["adjustment"](view.shape)
        adj_scale = np.broadcast_to(np.asarray(s, np.float32).astype(np.float64).ravel(), (c,))
        adj_bias = np.broadcast_to(np.asarray(b, np.float32).astype(np.float64).ravel(), (c,))
    r, d = np.ones(c), np.zeros(c)
    if o["renorm"]:
        clip = o["renorm_clipping"] or {}
        dmax = clip.get("dmax")
        rs = np.maximum(state["renorm_stddev"], np.sqrt(eps))
        r = _clip(stddev / rs, clip.get("rmin"), clip.get("rmax"))
        d = _clip((new_mean - state["renorm_mean"]) / rs, None if dmax is None else -dmax, dmax)
    return dict(mean=mean, var=var, new_mean=new_mean, new_var=new_var, stddev=stddev,
                adj_scale=adj_scale, adj_bias=adj_bias, r=r, d=d)


def forward(o, x, training, state):
    """(y, new_state) in float64 for one call on x with the state before it."""
    shape = np.shape(x)
    rank = len(shape)
    eps = epsilon(o, rank)
    train = bool(training) and o["trainable"]
    view = _View(o, shape, train)
    state = {k: v.copy() for k, v in state.items()}
    xv = view.split(x)
    if xv.size == 0:
        return view.join(xv), state
    g, b = state["gamma"], state["beta"]
    if not train:
        y = (xv - state["moving_mean"]) / np.sqrt(state["moving_variance"] + eps) * g + b
        return view.join(y), state
    t = _training_constants(o, xv, view, state, eps)
    normalized = (xv - t["mean"][None, :, None, :]) / np.sqrt(t["var"] + eps)[None, :, None, :]
    y = ((normalized * t["r"] + t["d"]) * t["adj_scale"] + t["adj_bias"]) * g + b

    def move(name, value, momentum):
        state[name] = state[name] - (state[name] - value) * (1.0 - momentum)

    if o["renorm"]:
        move("renorm_mean", t["new_mean"], o["renorm_momentum"])
        move("renorm_stddev", t["stddev"], o["renorm_momentum"])
    n = xv.size / view.channels
    bessel = n / max(n - 1.0, 1.0) if uses_fused(o, rank) else 1.0
    move("moving_mean", t["new_mean"], o["momentum"])
    if o["renorm"]:
        move("moving_stddev", t["stddev"], o["momentum"])
        state["moving_variance"] = np.maximum(state["moving_stddev"] ** 2 - eps, 0.0)
    else:
        move("moving_variance", t["new_var"] * bessel, o["momentum"])
    return view.join(y), state


def backward(o, x, dy, training, state):
    """The gradients of sum(dy * y) for forward(o, x, training, state): a dict with "dx" and
    the parameter gradients that exist ("gamma" with scale, "beta" with center, the
    adjustment's after a training call with one)."""
    shape = np.shape(x)
    eps = epsilon(o, len(shape))
    train = bool(training) and o["trainable"]
    view = _View(o, shape, train)
    xv, gv = view.split(x), view.split(dy)
    c = view.channels
    out = {}
    if xv.size == 0:
        out["dx"] = view.join(gv)
        dgamma = dbeta = dadj_scale = dadj_bias = np.zeros(c)
    elif not train:
        rho = 1.0 / np.sqrt(state["moving_variance"] + eps)
        out["dx"] = view.join(gv * state["gamma"] * rho)
        dgamma = (gv * (xv - state["moving_mean"]) * rho).sum(axis=(0, 1, 2))
        dbeta = gv.sum(axis=(0, 1, 2))
    else:
        t = _training_constants(o, xv, view, state, eps)
        mean = t["mean"][None, :, None, :]
        rho = 1.0 / np.sqrt(t["var"] + eps)
        n = xv.shape[0] * xv.shape[2]
        s1 = gv.sum(axis=(0, 2))
        s2 = (gv * (xv - mean)).sum(axis=(0, 2))
        k = state["gamma"] * t["r"] * t["adj_scale"] * rho
        dx = k[None, :, None, :] * (gv - (s1 / n)[None, :, None, :] -
                                    (xv - mean) * (rho ** 2 * s2 / n)[None, :, None, :])
        out["dx"] = view.join(dx)
        renormed = t["r"] * rho * s2 + t["d"] * s1
        dbeta = s1.sum(axis=0)
        dgamma = (t["adj_scale"] * renormed + t["adj_bias"] * s1).sum(axis=0)
        dadj_scale = state["gamma"] * renormed.sum(axis=0)
        dadj_bias = state["gamma"] * s1.sum(axis=0)
        if o["adjustment"] is not None:
            out["adjustment_scale"] = dadj_scale
            out["adjustment_bias"] = dadj_bias
    if o["scale"]:
        out["gamma"] = dgamma
    if o["center"]:
        out["beta"] = dbeta
    return out
