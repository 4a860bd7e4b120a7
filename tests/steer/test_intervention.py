"""The steering intervention: least-norm probe change, the hook, and its effects."""

from __future__ import annotations

import numpy as np
import pytest

from core.common.config import BuildConfig
from core.extract.activations import last_token_activations
from core.results.build import build
from core.steer.intervention import probe_delta, random_like
from core.steer.run import steer


def test_probe_delta_is_the_least_norm_change_reaching_the_target() -> None:
    rng = np.random.default_rng(0)
    coef, intercept = rng.standard_normal((2, 8)), rng.standard_normal(2)
    x, target = rng.standard_normal(8), np.array([10.0, -3.0])
    delta = probe_delta(coef, intercept, x, target)
    np.testing.assert_allclose(coef @ (x + delta) + intercept, target, atol=1e-9)
    # in the row space: no part of it is invisible to the probe
    projector = coef.T @ np.linalg.pinv(coef @ coef.T) @ coef
    np.testing.assert_allclose(projector @ delta, delta, atol=1e-9)
    other = delta + (np.eye(8) - projector) @ rng.standard_normal(8)  # also reaches the target
    assert np.linalg.norm(delta) < np.linalg.norm(other)
    noise = random_like(np.stack([delta, 2 * delta]), seed=1)
    np.testing.assert_allclose(
        np.linalg.norm(noise, axis=1), np.array([1, 2]) * np.linalg.norm(delta)
    )


@pytest.fixture
def steered_setup(tiny, places, cache_root):  # type: ignore[no-untyped-def]
    results = build(BuildConfig("tiny-llama", places, cache_root=cache_root), loaded=tiny)
    names = list(places.frame["name"][:4])
    targets = np.tile([[35.68, 139.69]], (len(names), 1))  # all toward Tokyo
    return tiny, results, names, targets


def test_zero_strength_changes_nothing(steered_setup) -> None:  # type: ignore[no-untyped-def]
    tiny, results, names, targets = steered_setup
    plain = steer(tiny, results, "", names, 1, targets, strength=0.0)
    acts = last_token_activations(tiny, names, layers=list(results.layers))
    np.testing.assert_allclose(plain.readings, results.predict(acts), atol=1e-4)
    again = steer(tiny, results, "", names, 1, targets, strength=0.0, direction="random")
    assert plain.continuations == again.continuations
    np.testing.assert_allclose(plain.delta_norm, 0.0)


def test_a_push_reads_the_target_at_its_layer_and_changes_later_ones(steered_setup) -> None:  # type: ignore[no-untyped-def]
    tiny, results, names, targets = steered_setup
    layer = 1
    pos = results.layer_position(layer)
    plain = steer(tiny, results, "", names, layer, targets, strength=0.0)
    pushed = steer(tiny, results, "", names, layer, targets, strength=1.0)
    np.testing.assert_allclose(pushed.readings[pos], targets, atol=1e-2)
    # earlier layers are untouched, later ones move
    np.testing.assert_allclose(pushed.readings[:pos], plain.readings[:pos], atol=1e-4)
    assert np.abs(pushed.readings[pos + 1 :] - plain.readings[pos + 1 :]).max() > 1e-3
    half = steer(tiny, results, "", names, layer, targets, strength=0.5)
    np.testing.assert_allclose(half.readings[pos], (plain.readings[pos] + targets) / 2, atol=1e-2)
    control = steer(tiny, results, "", names, layer, targets, strength=1.0, direction="random")
    np.testing.assert_allclose(control.delta_norm, pushed.delta_norm, rtol=1e-6)
    assert np.abs(control.readings[pos] - targets).max() > 1.0
    assert all(isinstance(t, str) for t in pushed.continuations)


def test_steering_rejects_a_layer_without_a_probe(steered_setup) -> None:  # type: ignore[no-untyped-def]
    tiny, results, names, targets = steered_setup
    with pytest.raises(ValueError, match="layer 99"):
        steer(tiny, results, "", names, 99, targets)
    with pytest.raises(ValueError, match="direction"):
        steer(tiny, results, "", names, 1, targets, direction="sideways")


def test_a_globe_probe_is_pushed_in_its_own_coordinates(tiny, places, cache_root) -> None:  # type: ignore[no-untyped-def]
    from core.common.config import ProbeSpec

    config = BuildConfig(
        "tiny-llama", places, probe=ProbeSpec(target="globe"), cache_root=cache_root
    )
    results = build(config, loaded=tiny)
    names = list(places.frame["name"][:3])
    targets = np.tile([[35.68, 139.69]], (len(names), 1))
    pushed = steer(tiny, results, "", names, 1, targets, strength=1.0)
    np.testing.assert_allclose(pushed.readings[results.layer_position(1)], targets, atol=0.05)
