# SPDX-License-Identifier: Apache-2.0
"""Every Keras option through bnorm.BatchNormalization against the float64 oracle: y, every
variable after each call, and backward's dx and parameter gradients, over training and
inference calls."""

import numpy as np
import pytest

from conftest import check_against_oracle, data

TRAIN_THEN_INFER = [True, True, False]


def adjustment(shape):
    channels = shape[-1]
    return (np.linspace(0.9, 1.1, channels), np.linspace(-0.1, 0.1, channels))


CASES = {
    "defaults_dense": (dict(), (16, 5)),
    "momentum_epsilon": (dict(momentum=0.5, epsilon=1e-2), (16, 5)),
    "nhwc_fused_auto": (dict(), (4, 3, 5, 6)),
    "nchw_fused_auto": (dict(axis=1), (4, 6, 3, 5)),
    "nchw_fused_true_small_epsilon": (dict(axis=1, fused=True, epsilon=1e-7), (3, 4, 2, 5)),
    "nchw_not_fused": (dict(axis=1, fused=False), (4, 6, 3, 5)),
    "ncdhw_fused": (dict(axis=1), (2, 3, 2, 3, 4)),
    "rank3_last_axis": (dict(), (4, 7, 3)),
    "rank3_middle_axis": (dict(axis=1), (4, 3, 7)),
    "two_adjacent_axes": (dict(axis=[1, 2]), (5, 3, 2, 4)),
    "two_apart_axes": (dict(axis=[1, 3]), (5, 3, 2, 4)),
    "batch_axis_is_feature": (dict(axis=0), (4, 9)),
    "no_center": (dict(center=False), (16, 5)),
    "no_scale": (dict(scale=False), (16, 5)),
    "neither": (dict(center=False, scale=False), (16, 5)),
    "constant_initializers": (dict(beta_initializer=0.25, gamma_initializer=1.5,
                                   moving_mean_initializer=0.5,
                                   moving_variance_initializer=3.0), (16, 5)),
    "config_dict_initializer": (dict(gamma_initializer={"class_name": "Constant",
                                                        "config": {"value": 0.75}}), (16, 5)),
    "renorm": (dict(renorm=True), (16, 5)),
    "renorm_clipping": (dict(renorm=True, renorm_momentum=0.5,
                             renorm_clipping={"rmax": 1.1, "rmin": 0.9, "dmax": 0.2}), (16, 5)),
    "renorm_clipping_partial": (dict(renorm=True, renorm_clipping={"rmax": 1.05}), (16, 5)),
    "ghost_batches": (dict(virtual_batch_size=4), (16, 5)),
    "ghost_batches_nhwc": (dict(virtual_batch_size=2), (6, 3, 3, 4)),
    "ghost_batches_renorm": (dict(virtual_batch_size=4, renorm=True), (16, 5)),
    "adjustment": (dict(adjustment=adjustment), (16, 5)),
    "adjustment_renorm": (dict(adjustment=adjustment, renorm=True), (16, 5)),
    "not_trainable": (dict(trainable=False), (16, 5)),
    "synchronized_single_rank": (dict(synchronized=True), (4, 3, 5, 6)),
    "synchronized_nchw": (dict(synchronized=True, axis=1), (4, 6, 3, 5)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_option_matches_the_keras_oracle(name):
    kwargs, shape = CASES[name]
    check_against_oracle(kwargs, shape, TRAIN_THEN_INFER)


def test_training_none_is_inference():
    check_against_oracle({}, (8, 3), [None, True, None])


def test_empty_batch_changes_nothing(bnorm_module):
    layer = bnorm_module.BatchNormalization()
    layer(data((4, 3)), training=True)
    before = layer.get_weights()
    y = layer(np.zeros((0, 3), np.float32), training=True)
    assert y.shape == (0, 3)
    for a, b in zip(before, layer.get_weights()):
        np.testing.assert_array_equal(a, b)
    dx = layer.backward(np.zeros((0, 3), np.float32))
    assert dx.shape == (0, 3)
    np.testing.assert_array_equal(layer.gradients["gamma"], np.zeros(3, np.float32))


def test_fused_resolves_as_keras(bnorm_module):
    cases = [((2, 3, 4, 5), dict(), True), ((2, 3, 4, 5), dict(axis=1), True),
             ((2, 3, 4, 5), dict(axis=2), False), ((6, 5), dict(), False),
             ((2, 3, 4, 5), dict(synchronized=True), False),
             ((2, 3, 4, 5), dict(fused=False), False)]
    for shape, kwargs, fused in cases:
        layer = bnorm_module.BatchNormalization(**kwargs)
        assert layer.fused is None
        layer(data(shape))
        assert layer.fused is fused, (shape, kwargs)


def test_trainable_set_later_freezes_the_layer(bnorm_module):
    layer = bnorm_module.BatchNormalization()
    x = data((8, 3))
    layer(x, training=True)
    layer.trainable = False
    assert layer.trainable is False
    before = layer.get_weights()
    frozen = layer(x, training=True)
    inference = layer(x, training=False)
    np.testing.assert_array_equal(frozen, inference)
    for a, b in zip(before, layer.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert layer.get_config()["trainable"] is False
    layer.trainable = True
    layer(x, training=True)
    assert not np.array_equal(before[2], layer.get_weights()[2])


def test_weights_in_keras_order(bnorm_module):
    layer = bnorm_module.BatchNormalization(renorm=True, gamma_initializer=2.0,
                                            beta_initializer=3.0, moving_mean_initializer=4.0,
                                            moving_variance_initializer=9.0)
    assert layer.get_weights() == []
    layer.build((None, 2))
    values = [w[0] for w in layer.get_weights()]
    # gamma, beta, moving_mean, moving_variance, moving_stddev, renorm_mean, renorm_stddev
    assert values == [2.0, 3.0, 4.0, 9.0, 3.0, 4.0, 3.0]
    layer = bnorm_module.BatchNormalization(center=False)
    layer.build((4, 2))
    assert len(layer.get_weights()) == 3


def test_set_weights_round_trips_and_accepts_keras_shapes(bnorm_module):
    layer = bnorm_module.BatchNormalization(axis=[1, 2])
    layer.build((4, 2, 3))
    new = [np.arange(6, dtype=np.float32).reshape(2, 3) + k for k in range(4)]
    layer.set_weights(new)
    for a, b in zip(layer.get_weights(), new):
        np.testing.assert_array_equal(a, b)
    # Keras keeps multi-axis variables with the full rank: (1, 2, 3).
    layer.set_weights([w.reshape(1, 2, 3) * 2 for w in new])
    np.testing.assert_array_equal(layer.get_weights()[0], new[0] * 2)


def test_constraints_apply_on_set_weights(bnorm_module):
    layer = bnorm_module.BatchNormalization(gamma_constraint=lambda w: np.clip(w, 0.5, 1.5),
                                            beta_constraint=lambda w: np.maximum(w, 0.0))
    layer.build((4, 3))
    layer.set_weights([np.array([0.0, 1.0, 2.0]), np.array([-1.0, 1.0, 2.0]),
                       np.zeros(3), np.ones(3)])
    gamma, beta, _, _ = layer.get_weights()
    np.testing.assert_array_equal(gamma, [0.5, 1.0, 1.5])
    np.testing.assert_array_equal(beta, [0.0, 1.0, 2.0])


def test_config_round_trips(bnorm_module):
    kwargs = dict(axis=[1, 2], momentum=0.9, epsilon=1e-4, center=False, scale=True,
                  gamma_initializer=1.5, moving_variance_initializer="ones", renorm=True,
                  renorm_clipping={"rmax": 2.0}, renorm_momentum=0.8, fused=False,
                  trainable=False, virtual_batch_size=2, synchronized=True, name="bn7")
    layer = bnorm_module.BatchNormalization(**kwargs)
    config = layer.get_config()
    expected = {"name": "bn7", "trainable": False, "dtype": "float32", "axis": [1, 2],
                "momentum": 0.9, "epsilon": 1e-4, "center": False, "scale": True,
                "beta_initializer": {"class_name": "Zeros", "config": {}},
                "gamma_initializer": {"class_name": "Constant", "config": {"value": 1.5}},
                "moving_mean_initializer": {"class_name": "Zeros", "config": {}},
                "moving_variance_initializer": {"class_name": "Ones", "config": {}},
                "beta_regularizer": None, "gamma_regularizer": None,
                "beta_constraint": None, "gamma_constraint": None, "renorm": True,
                "renorm_clipping": {"rmax": 2.0}, "renorm_momentum": 0.8,
                "virtual_batch_size": 2, "fused": False, "synchronized": True}
    assert config == expected
    again = bnorm_module.BatchNormalization.from_config(config)
    assert again.get_config() == config
    x = data((4, 3, 2, 5))
    layer.trainable = True
    again.trainable = True
    np.testing.assert_array_equal(layer(x, training=True), again(x, training=True))


def test_default_config_has_only_keras_keys(bnorm_module):
    config = bnorm_module.BatchNormalization().get_config()
    assert sorted(config) == sorted([
        "name", "trainable", "dtype", "axis", "momentum", "epsilon", "center", "scale",
        "beta_initializer", "gamma_initializer", "moving_mean_initializer",
        "moving_variance_initializer", "beta_regularizer", "gamma_regularizer",
        "beta_constraint", "gamma_constraint"])
    assert config["name"].startswith("batch_normalization")


def test_adjustment_is_left_out_of_the_config_with_a_warning(bnorm_module):
    layer = bnorm_module.BatchNormalization(adjustment=adjustment)
    with pytest.warns(UserWarning, match="adjustment"):
        config = layer.get_config()
    assert "adjustment" not in config


def test_adjustment_gets_the_input_shape(bnorm_module):
    seen = []

    def record(shape):
        seen.append(shape)
        return 1.0, 0.0

    layer = bnorm_module.BatchNormalization(adjustment=record)
    layer(data((6, 4)), training=True)
    layer(data((6, 4)), training=False)
    assert seen == [(6, 4)]
