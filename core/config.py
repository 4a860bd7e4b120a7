"""Run specifications: one frozen dataclass per run, hashed into its cache key."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

from core.hashing import sha256_json

DEFAULT_ALPHA_GRID = (-4.0, 8.0, 49)  # log10 start, stop, count: 49 values over 12 decades


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")[:40] or "x"


@dataclass(frozen=True)
class ActivationSpec:
    """What determines an activation cache (the dataset enters through its hash)."""

    model: str
    dataset: str
    prompt: str = "empty"
    layers: tuple[int, ...] | None = None  # None: every decoder block
    dtype: str = "auto"  # compute dtype: auto = float32 on CPU, bfloat16 on GPU
    random_init: bool = False
    seed: int = 0
    limit: int | None = None
    max_tokens_per_batch: int = 4096
    max_batch_size: int = 64

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def key(self, dataset_hash: str, weights_hash: str) -> str:
        """sha256 of the canonical spec + dataset hash + weights hash, with a readable prefix.

        Batching knobs do not change the values (beyond float noise) and are left out,
        so a resumed build with another batch size reuses the cache.
        """
        body = self.to_dict()
        for knob in ("max_tokens_per_batch", "max_batch_size"):
            body.pop(knob)
        digest = sha256_json({"spec": body, "dataset": dataset_hash, "weights": weights_hash})
        tag = "-rand" if self.random_init else ""
        return f"{_slug(self.model)}{tag}__{_slug(self.dataset)}__{_slug(self.prompt)}__{digest[:16]}"


@dataclass(frozen=True)
class ProbeSpec:
    """How probes are fitted on an activation cache."""

    alpha_grid: tuple[float, float, int] = DEFAULT_ALPHA_GRID
    method: str = "loo"  # exact leave-one-out ("loo") or generalised CV ("gcv")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def key(self, activation_key: str) -> str:
        digest = sha256_json({"probe": self.to_dict(), "activations": activation_key})
        return f"{activation_key.rsplit('__', 1)[0]}__{digest[:16]}"
