"""Research figures: controls, hold-out, neurons, transfer, the layer animation and its GIF."""

from __future__ import annotations

import io
import shutil

import numpy as np
import pandas as pd
import pytest

from core.viz import analysis_figures as afigs
from tests.support.synthetic import space_entities, synthetic_results, time_entities


def test_controls_figure_flat_lines_and_random_init() -> None:
    controls = pd.DataFrame(
        [
            {"layer": -1, "control": "mean", "split": "test", "r2": -0.01, "proximity_error": 0.5},
            *(
                {
                    "layer": layer,
                    "control": "probe",
                    "split": "test",
                    "r2": 0.2 * layer,
                    "proximity_error": 0.4 - 0.05 * layer,
                }
                for layer in range(4)
            ),
        ]
    )
    random_init = pd.DataFrame(
        [
            {"layer": layer, "split": "test", "r2": 0.01, "proximity_error": 0.49}
            for layer in range(4)
        ]
    )
    fig = afigs.controls_figure(controls, random_init, selected_layer=2)
    mean = [t for t in fig.data if t.name == "train mean"]
    assert len(mean) == 2 and list(mean[0].x) == [0.0, 3.0] and list(mean[0].y) == [-0.01, -0.01]
    assert {t.name for t in fig.data} == {"linear probe", "random-init model", "train mean"}


def test_layer_animation_has_one_frame_per_layer() -> None:
    res = synthetic_results(space_entities(60, "world"), "space", 3, 8, "m", "world_places")
    fig = afigs.layer_animation_figure(
        res.entities, res.predictions, [0, 1, 2], res.target_names, "space", rows=np.arange(20)
    )
    assert [f.name for f in fig.frames] == ["0", "1", "2"]
    assert len(fig.frames[2].data[0].lat) == 20
    np.testing.assert_allclose(
        fig.frames[1].data[0].lat, np.asarray(res.predictions[1, :20, 0], dtype=float)
    )
    people = synthetic_results(time_entities(40), "time", 2, 8, "m", "historical_figures")
    fig = afigs.layer_animation_figure(
        people.entities, people.predictions, [0, 1], people.target_names, "time"
    )
    assert fig.frames[1].data[0].type == "scatter"


def test_transfer_and_neuron_figures() -> None:
    transfer = pd.DataFrame(
        [
            {
                "layer": 1,
                "train_prompt": a,
                "apply_prompt": b,
                "r2": 1.0 if a == b else 0.3,
                "proximity_error": 0.1,
            }
            for a in "xy"
            for b in "xy"
        ]
    )
    heat = afigs.transfer_figure(transfer, 1).data[0]
    assert heat.type == "heatmap" and np.asarray(heat.z).tolist() == [[1.0, 0.3], [0.3, 1.0]]
    ents = space_entities(30, "world")
    fig = afigs.neuron_figure(ents, np.arange(30.0), "space", "L1 n3")
    assert list(fig.data[-1].marker.color) == list(np.arange(30.0))


@pytest.mark.skipif(
    shutil.which("chromium") is None,
    reason="kaleido needs Debian chromium (apt-get install -y chromium)",
)
def test_animation_gif_export() -> None:
    from PIL import Image

    res = synthetic_results(time_entities(30), "time", 2, 8, "m", "historical_figures")
    fig = afigs.layer_animation_figure(
        res.entities, res.predictions, [0, 1], res.target_names, "time", title="t"
    )
    gif = afigs.animation_gif(fig, width=320, height=200)
    image = Image.open(io.BytesIO(gif))
    assert image.format == "GIF" and image.n_frames == 2 and image.size == (320, 200)
