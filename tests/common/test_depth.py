"""Normalised depth (layer + 1) / n and the layer nearest a depth."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from core.common.depth import depth_of, layer_at_depth
from core.ui import view_state as vs


def test_half_depth_of_an_18_and_a_30_layer_model() -> None:
    # (layer + 1) / n: 9/18 and 15/30 are exactly 0.5
    assert layer_at_depth(None, 18, 0.5) == 8
    assert layer_at_depth(None, 30, 0.5) == 14
    assert depth_of(8, 18) == depth_of(14, 30) == 0.5


def test_ends_of_the_slider() -> None:
    for n in (1, 6, 18, 30, 80):
        assert layer_at_depth(None, n, 0.0) == 0
        assert layer_at_depth(None, n, 1.0) == n - 1
        assert layer_at_depth(None, n, -3.0) == 0 and layer_at_depth(None, n, 7.0) == n - 1
        assert layer_at_depth(None, n, float("nan")) == n - 1


def test_ties_go_to_the_shallower_layer() -> None:
    # 5 layers at depths 0.2 … 1.0: 0.5 lies halfway between layers 1 (0.4) and 2 (0.6)
    assert layer_at_depth(None, 5, 0.5) == 1
    assert layer_at_depth(None, 5, 0.3) == 0  # between 0.2 and 0.4
    assert layer_at_depth(None, 5, 0.51) == 2


def test_nearest_layer_is_round_half_down_of_depth_times_layers_minus_one() -> None:
    """The documented closed form, checked in exact arithmetic on a fine grid."""
    for n in (1, 2, 5, 6, 18, 24, 30, 32, 80):
        for k in range(0, 1001):
            d = Fraction(k, 1000)
            x = d * n
            half_down = int(x) if x - int(x) <= Fraction(1, 2) else int(x) + 1
            expected = min(max(half_down - 1, 0), n - 1)
            assert layer_at_depth(None, n, k / 1000) == expected, (n, k)


def test_every_layer_is_reachable_from_its_rounded_depth() -> None:
    """The slider opens on round((best + 1) / n, 2) and must show the best layer again."""
    for n in range(1, 81):
        for layer in range(n):
            d = round(depth_of(layer, n), vs.DEPTH_DECIMALS)
            assert layer_at_depth(None, n, d) == layer, (n, layer)


def test_only_probed_layers_are_chosen() -> None:
    probed = [0, 10, 20, 29]  # depths 1/30, 11/30, 21/30, 1
    assert layer_at_depth(probed, 30, 0.5) == 10
    assert layer_at_depth(probed, 30, 0.6) == 20
    assert layer_at_depth(np.array(probed), 30, 0.5) == 10
    with pytest.raises(ValueError):
        layer_at_depth([], 30, 0.5)
    with pytest.raises(ValueError):
        layer_at_depth(None, 0, 0.5)
    with pytest.raises(ValueError):
        depth_of(0, 0)


def test_depth_of_an_array_matches_each_layer() -> None:
    layers = np.array([0, 5, 29])
    assert depth_of(layers, 30).tolist() == [depth_of(int(v), 30) for v in layers]


def test_a_quarter_of_the_depth() -> None:
    """The steering layers and the Compare page agree: d = 0.25 of 30 layers is layer 6."""
    assert layer_at_depth(range(30), 30, 0.25) == 6
    assert layer_at_depth(None, 18, 0.25) == 3
