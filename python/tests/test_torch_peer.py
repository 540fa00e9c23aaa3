# SPDX-License-Identifier: Apache-2.0
"""A real peer: PyTorch's torch.nn.functional.batch_norm, forward in training and inference and
its autograd gradients, against layer(x) and layer.backward(dy) on random NCHW and NHWC
shapes. bnorm's fused convention (Keras' choice for 4-D inputs) is PyTorch's: biased variance
to normalize, Bessel-corrected variance into the moving average (momentum = 1 - Keras')."""

import numpy as np
import pytest

from conftest import assert_close, data

torch = pytest.importorskip(
    "torch", reason="PyTorch is not installed (Debian python3-torch); the peer check is skipped")

MOMENTUM = 0.9
EPSILON = 1e-3


def random_shapes(count, seed):
    rng = np.random.default_rng(seed)
    return [tuple(int(s) for s in (rng.integers(1, 9), rng.integers(1, 17), rng.integers(1, 12),
                                   rng.integers(1, 12))) for _ in range(count)]


SHAPES = random_shapes(6, 7) + [(2, 64, 7, 7), (1, 3, 1, 1)]


def torch_case(x_nchw, gamma, beta, mean, var, training, dy_nchw):
    x = torch.tensor(x_nchw, dtype=torch.float64, requires_grad=True)
    weight = torch.tensor(gamma, dtype=torch.float64, requires_grad=True)
    bias = torch.tensor(beta, dtype=torch.float64, requires_grad=True)
    running_mean = torch.tensor(mean, dtype=torch.float64)
    running_var = torch.tensor(var, dtype=torch.float64)
    y = torch.nn.functional.batch_norm(x, running_mean, running_var, weight, bias,
                                       training=training, momentum=1.0 - MOMENTUM, eps=EPSILON)
    (y * torch.tensor(dy_nchw, dtype=torch.float64)).sum().backward()
    return {"y": y.detach().numpy(), "dx": x.grad.numpy(), "gamma": weight.grad.numpy(),
            "beta": bias.grad.numpy(), "moving_mean": running_mean.numpy(),
            "moving_variance": running_var.numpy()}


@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_matches_torch_batch_norm(bnorm, shape, layout, training):
    n, c, h, w = shape
    if training and n * h * w == 1:
        pytest.skip("PyTorch rejects training with one value per channel")
    x_nchw = data(shape, n * 1000 + c)
    dy_nchw = data(shape, c * 1000 + n, center=0.0, spread=1.0)
    rng = np.random.default_rng(c)
    gamma = (1.0 + 0.5 * rng.standard_normal(c)).astype(np.float32)
    beta = (0.5 * rng.standard_normal(c)).astype(np.float32)
    mean = (1.5 + 0.3 * rng.standard_normal(c)).astype(np.float32)
    var = (4.0 * (1.0 + 0.2 * rng.random(c))).astype(np.float32)

    axis = 1 if layout == "nchw" else -1
    layer = bnorm.BatchNormalization(axis=axis, momentum=MOMENTUM, epsilon=EPSILON)
    to_layer = (lambda a: a) if layout == "nchw" else (
        lambda a: np.ascontiguousarray(a.transpose(0, 2, 3, 1)))
    from_layer = (lambda a: a) if layout == "nchw" else (lambda a: a.transpose(0, 3, 1, 2))
    layer.build(to_layer(x_nchw).shape)
    layer.set_weights([gamma, beta, mean, var])
    y = from_layer(layer(to_layer(x_nchw), training=training))
    dx = from_layer(layer.backward(to_layer(dy_nchw)))
    ref = torch_case(x_nchw, gamma, beta, mean, var, training, dy_nchw)

    assert layer.fused is True
    assert_close(y, ref["y"], what="y")
    assert_close(dx, ref["dx"], 2e-4, what="dx")
    scale = np.sqrt(x_nchw.size)
    assert_close(layer.gradients["gamma"], ref["gamma"], 2e-4 * scale, what="dgamma")
    assert_close(layer.gradients["beta"], ref["beta"], 2e-4 * scale, what="dbeta")
    _, _, moving_mean, moving_variance = layer.get_weights()
    assert_close(moving_mean, ref["moving_mean"], what="moving_mean")
    assert_close(moving_variance, ref["moving_variance"], what="moving_variance")


@pytest.fixture
def bnorm():
    import bnorm as module  # pylint: disable=import-outside-toplevel
    return module
