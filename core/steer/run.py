"""Steering: push entities along a layer's probe direction and read what the model says.

For each entity the model reads ``start + prompt + name`` (as when probing) and the
question ``start + prompt + name + question``; the change from
:func:`core.steer.intervention.probe_delta` (times a strength), or a random direction of
the same norm, is added after block L at every token of ``prompt + name``. Because the
model is causal, the entity's own tokens read the same in both texts, so the probe
readings of the first and the continuation of the second see the same intervention.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core.data.prompts import compose
from core.extract.activations import capture_last_token, tokenize
from core.extract.models import LoadedModel
from core.results.probe_results import ProbeResults
from core.steer.intervention import add_at_positions, entity_mask, probe_delta, random_like

log = logging.getLogger(__name__)

# The question each dataset's continuation answers; `{name}` is the probed text.
QUESTIONS: dict[str, str] = {
    "world_places": "{name} is located in the country of",
    "world_capitals": "{name} is located in the country of",
    "us_places": "{name} is located in the state of",
    "nyc_places": "{name} is located in the borough of",
    "historical_figures": "{name} died in the year",
    "artworks": "{name} was released in the year",
    "dated_events": "{name} happened in the year",
    "headlines": "{name} was published in the year",
}
DEFAULT_QUESTIONS = {"space": "{name} is located in", "time": "{name} happened in the year"}
DIRECTIONS = ("probe", "random")
MAX_NEW_TOKENS = 6
BATCH = 50


def question_for(dataset: str, kind: str) -> str:
    return QUESTIONS.get(dataset, DEFAULT_QUESTIONS.get(kind, "{name} is"))


@dataclass(frozen=True)
class Steered:
    """One steering run over a batch of entities."""

    continuations: list[str]  # greedy continuation of each question
    readings: np.ndarray  # [n_layers, n, T] every layer's probe at the entity's last token
    delta_norm: np.ndarray  # [n] norm of the change added


def _spans(probed: list[list[int]], asked: list[list[int]]) -> list[int]:
    """How many leading tokens of each question are the probed text's (start token too)."""
    counts = []
    for i, (a, b) in enumerate(zip(probed, asked, strict=True)):
        n = 0
        while n < min(len(a), len(b)) and a[n] == b[n]:
            n += 1
        if n < len(a):
            log.warning("question %d tokenises the entity differently (%d of %d)", i, n, len(a))
        counts.append(max(n, 1))
    return counts


def _generate(
    loaded: LoadedModel, ids: list[list[int]], layer: int, deltas: np.ndarray, n_entity: list[int]
) -> list[str]:
    import torch

    tok = loaded.tokenizer
    pad = tok.pad_token_id if tok.pad_token_id is not None else (tok.eos_token_id or 0)
    width = max(len(row) for row in ids)
    input_ids = torch.full((len(ids), width), int(pad), dtype=torch.long)
    attention = torch.zeros((len(ids), width), dtype=torch.long)
    for row, seq in enumerate(ids):  # left padding: every row's next token follows its last
        input_ids[row, width - len(seq) :] = torch.tensor(seq)
        attention[row, width - len(seq) :] = 1
    mask = entity_mask([len(s) for s in ids], [(1, n) for n in n_entity], width, left=True)
    device = next(loaded.model.parameters()).device
    with (
        torch.inference_mode(),
        add_at_positions(loaded.blocks[layer], torch.as_tensor(deltas, dtype=torch.float32), mask),
    ):
        out = loaded.model.generate(
            input_ids=input_ids.to(device),
            attention_mask=attention.to(device),
            max_new_tokens=MAX_NEW_TOKENS,
            do_sample=False,
            pad_token_id=int(pad),
        )
    return [tok.decode(row[width:], skip_special_tokens=True) for row in out.cpu().tolist()]


def _readings(
    loaded: LoadedModel, results: ProbeResults, ids: list[list[int]], layer: int, deltas: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(probe readings [n_layers, n, T], raw activations [n_layers, n, d]) at the last
    token of the probed texts, with `deltas` added after block `layer`."""
    import torch

    layers = [int(v) for v in results.layers]
    width = max(len(row) for row in ids)
    mask = entity_mask([len(s) for s in ids], [(1, len(s)) for s in ids], width, left=False)
    blocks = loaded.blocks
    with add_at_positions(blocks[layer], torch.as_tensor(deltas, dtype=torch.float32), mask):
        captured = capture_last_token(loaded, ids, {v: blocks[v] for v in layers})
    acts = np.stack([captured[v].float().cpu().numpy() for v in layers])
    return results.predict(acts), acts


def steer(
    loaded: LoadedModel,
    results: ProbeResults,
    prompt_text: str,
    names: Sequence[str],
    layer: int,
    targets: np.ndarray,
    strength: float = 1.0,
    direction: str = "probe",
    question: str = "{name} is",
    seed: int = 0,
    base: np.ndarray | None = None,
) -> Steered:
    """Push each name's layer-`layer` reading toward its row of `targets` ([n, T], target
    units) by `strength` times the least-norm change (or, for direction "random", a seeded
    random direction of that norm) and report continuations and readings.

    Strength 0 is the model untouched; strength 1 makes the layer's probe read the target.
    `base`: the untouched activations [n_layers, n, d] of these names, if already known.
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    if layer not in [int(v) for v in results.layers]:
        raise ValueError(f"layer {layer} has no probe in these results ({list(results.layers)})")
    targets = np.asarray(targets, dtype=np.float64).reshape(len(names), -1)
    probed = tokenize(loaded, [compose(prompt_text, name) for name in names])
    asked = tokenize(loaded, [prompt_text + question.format(name=name) for name in names])
    n_entity = _spans(probed, asked)
    pos = results.layer_position(layer)
    if base is None:
        _, base = _readings(loaded, results, probed, layer, np.zeros((len(names), loaded.d_model)))
    before = base
    # in the coordinates the probe reads (x, y, z for a globe probe)
    delta = strength * probe_delta(
        results.coef[pos], results.intercept[pos], before[pos], results.to_probe_axes(targets)
    )
    if direction == "random":
        delta = random_like(delta, seed)
    readings, _ = _readings(loaded, results, probed, layer, delta)
    texts = _generate(loaded, asked, layer, delta, n_entity)
    return Steered(texts, readings, np.linalg.norm(delta, axis=1))


def untouched_activations(
    loaded: LoadedModel,
    results: ProbeResults,
    prompt_text: str,
    names: Sequence[str],
    batch: int = BATCH,
) -> np.ndarray:
    """The names' activations [n_layers, n, d] at every probed layer, no push."""
    parts = []
    for i in range(0, len(names), batch):
        ids = tokenize(loaded, [compose(prompt_text, name) for name in names[i : i + batch]])
        zero = np.zeros((len(ids), loaded.d_model))
        parts.append(_readings(loaded, results, ids, int(results.layers[0]), zero)[1])
    return np.concatenate(parts, axis=1)


def steer_batched(
    loaded: LoadedModel,
    results: ProbeResults,
    prompt_text: str,
    names: Sequence[str],
    layer: int,
    targets: np.ndarray,
    batch: int = BATCH,
    **options: object,
) -> Steered:
    """:func:`steer` over batches of `batch` names (memory stays small)."""
    seed = int(options.pop("seed", 0))  # type: ignore[call-overload]
    base = options.pop("base", None)
    parts = [
        steer(
            loaded,
            results,
            prompt_text,
            names[i : i + batch],
            layer,
            targets[i : i + batch],
            seed=seed + i,  # each batch its own random directions
            base=None if base is None else base[:, i : i + batch],  # type: ignore[index]
            **options,  # type: ignore[arg-type]
        )
        for i in range(0, len(names), batch)
    ]
    return Steered(
        [t for p in parts for t in p.continuations],
        np.concatenate([p.readings for p in parts], axis=1),
        np.concatenate([p.delta_norm for p in parts]),
    )


@dataclass(frozen=True)
class SteerComparison:
    """One name pushed toward one target: untouched, along the probe, along a random
    direction of the same norm."""

    question: str
    before: str
    after: str
    control: str
    readings: dict[str, np.ndarray]  # "before" / "steered" / "random" -> [n_layers, T]
    delta_norm: float


def steer_one(
    loaded: LoadedModel,
    results: ProbeResults,
    prompt_text: str,
    name: str,
    layer: int,
    target: Sequence[float],
    strength: float,
    question: str,
    seed: int = 0,
) -> SteerComparison:
    """The live page's steering: the three runs of :func:`steer` for one name."""
    targets = np.asarray([target], dtype=np.float64)
    runs = {
        label: steer(
            loaded,
            results,
            prompt_text,
            [name],
            layer,
            targets,
            strength=s,
            direction=direction,
            question=question,
            seed=seed,
        )
        for label, s, direction in (
            ("before", 0.0, "probe"),
            ("steered", strength, "probe"),
            ("random", strength, "random"),
        )
    }
    return SteerComparison(
        question=prompt_text + question.format(name=name),
        before=runs["before"].continuations[0],
        after=runs["steered"].continuations[0],
        control=runs["random"].continuations[0],
        readings={label: run.readings[:, 0, :] for label, run in runs.items()},
        delta_norm=float(runs["steered"].delta_norm[0]),
    )
