# SPDX-License-Identifier: Apache-2.0
"""Element types and memory: float32, float16 and bfloat16 (uint16 bit patterns; ml_dtypes'
when installed) keep their dtype; float64 and integers are cast to float32 (Keras' autocast);
views that are not C-contiguous are copied once and give the same result; C-contiguous input
is read in place."""

import numpy as np
import pytest

import bnorm
from conftest import assert_close, data


def to_bfloat16_bits(values):
    """float32 -> bfloat16 bit patterns, rounded to nearest even."""
    bits = np.asarray(values, np.float32).view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    return rounded.astype(np.uint16)


def from_bfloat16_bits(bits):
    return (bits.astype(np.uint32) << 16).view(np.float32)


def run(x, training=True):
    layer = bnorm.BatchNormalization(axis=1)
    y = layer(x, training=training)
    return layer, y


def test_float16_in_float16_out():
    x = data((4, 3, 5, 6)).astype(np.float16)
    layer, y = run(x)
    assert y.dtype == np.float16
    _, y32 = run(x.astype(np.float32))
    assert_close(y, y32, 2e-3)
    dx = layer.backward(np.ones_like(x))
    assert dx.dtype == np.float16


def test_bfloat16_bits_in_bfloat16_bits_out():
    x32 = from_bfloat16_bits(to_bfloat16_bits(data((4, 3, 5, 6))))
    layer, y = run(to_bfloat16_bits(x32))
    assert y.dtype == np.uint16
    _, y32 = run(x32)
    assert_close(from_bfloat16_bits(y), y32, 1e-2)
    dx = layer.backward(to_bfloat16_bits(np.ones(x32.shape)))
    assert dx.dtype == np.uint16


def test_ml_dtypes_bfloat16_when_installed():
    ml_dtypes = pytest.importorskip(
        "ml_dtypes", reason="ml_dtypes is not installed (no Debian package); uint16 bit "
                            "patterns carry bfloat16 instead")
    x32 = data((4, 3, 5, 6))
    x = x32.astype(ml_dtypes.bfloat16)
    _, y = run(x)
    assert y.dtype == x.dtype
    _, y_bits = run(x.view(np.uint16))
    np.testing.assert_array_equal(y.view(np.uint16), y_bits)


@pytest.mark.parametrize("dtype", [np.float64, np.int32, np.int64, np.uint8, np.int16])
def test_other_real_dtypes_are_cast_to_float32(dtype):
    x = (data((4, 3, 5, 6), spread=20.0, center=40.0)).astype(dtype)
    _, y = run(x)
    assert y.dtype == np.float32
    _, expected = run(x.astype(np.float32))
    np.testing.assert_array_equal(y, expected)


def test_lists_are_arrays_too():
    x = data((6, 2))
    _, expected = run(x)
    _, y = run(x.tolist())
    np.testing.assert_array_equal(y, expected)


@pytest.mark.parametrize("view", ["transposed", "strided", "big_endian", "fortran"])
def test_non_contiguous_input_is_copied_once_with_the_same_result(view):
    base = data((8, 6, 4, 4))
    if view == "transposed":
        x = np.ascontiguousarray(base.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    elif view == "strided":
        x = np.ascontiguousarray(np.repeat(base, 2, axis=0))[::2]
    elif view == "big_endian":
        x = base.astype(">f4")
    else:
        x = np.asfortranarray(base)
    np.testing.assert_array_equal(x, base)
    layer, y = run(x)
    ref_layer, expected = run(base)
    np.testing.assert_array_equal(y, expected)
    np.testing.assert_array_equal(layer.backward(base), ref_layer.backward(base))


def test_contiguous_input_is_read_in_place():
    # The layer keeps x itself for backward: changing it in place changes the gradients.
    x = data((16, 3))
    dy = data((16, 3), 1)
    layer, _ = run(x)
    first = layer.backward(dy)
    x *= 2.0
    second = layer.backward(dy)
    assert not np.array_equal(first, second)
