"""Run specifications: one frozen dataclass per run, hashed into its cache key."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.common.hashing import sha256_json

# log10 start, stop, count of the ridge penalty in units of trace(Xc^T Xc)/d of the
# layer's training rows: 57 values over 14 decades, the same grid for every layer
DEFAULT_ALPHA_GRID = (-8.0, 6.0, 57)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")[:40] or "x"


@dataclass(frozen=True)
class ActivationSpec:
    """What determines an activation cache (the dataset enters through its hash)."""

    model: str
    dataset: str
    prompt: str = "empty"
    layers: tuple[int, ...] | None = None  # None: every decoder block
    dtype: str = "auto"  # compute dtype; builds store the resolved one (float32 on CPU)
    start_token: str = "auto"  # document-start token; builds store the resolved one
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
        return (
            f"{_slug(self.model)}{tag}__{_slug(self.dataset)}__{_slug(self.prompt)}__{digest[:16]}"
        )


PROBE_TARGETS = ("latlon", "globe")


@dataclass(frozen=True)
class ProbeSpec:
    """How probes are fitted on an activation cache."""

    alpha_grid: tuple[float, float, int] = DEFAULT_ALPHA_GRID
    alpha_scale: str = "trace"  # grid in units of trace(Xc^T Xc)/d ("none": raw penalties)
    method: str = "loo"  # exact leave-one-out ("loo") or generalised CV ("gcv")
    # what a space probe reads: "latlon", or "globe" (x, y, z on the unit sphere)
    target: str = "latlon"

    def __post_init__(self) -> None:
        if self.target not in PROBE_TARGETS:
            raise ValueError(f"probe target must be one of {PROBE_TARGETS}, got {self.target!r}")

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        if self.target == "latlon":  # the default leaves every earlier cache key as it was
            del out["target"]
        return out

    def key(self, activation_key: str) -> str:
        digest = sha256_json({"probe": self.to_dict(), "activations": activation_key})
        return f"{activation_key.rsplit('__', 1)[0]}__{digest[:16]}"


@dataclass(frozen=True)
class BuildConfig:
    """One build, whole: what is built, how, and where it is cached.

    `dataset` is a registered name, a CSV path or an in-memory EntityDataset. The cache
    keys come from :meth:`activation_spec` and `probe`; the batching, device and solver
    knobs change how fast a build runs, not its key.
    """

    # what
    model: str
    dataset: Any  # str | EntityDataset (core.data is a later module than this one)
    prompt: str | None = None  # None: the dataset's main prompt
    limit: int | None = None
    layers: tuple[int, ...] | None = None  # None: every decoder block
    random_init: bool = False
    probe: ProbeSpec = ProbeSpec()
    # how
    device: str = "auto"
    dtype: str = "auto"
    max_tokens_per_batch: int | None = None  # None: chosen by device
    max_batch_size: int | None = None
    probe_device: str | None = None  # None: numpy; a torch device fits there
    trust_remote_code: bool = False
    # where
    cache_root: Path | None = None

    def dataset_name(self) -> str:
        return self.dataset if isinstance(self.dataset, str) else str(self.dataset.name)

    def activation_spec(
        self,
        dataset_name: str,
        default_prompt: str,
        batching: tuple[int, int],
        dtype: str,
        start_token: str = "auto",
    ) -> ActivationSpec:
        """The activation spec of this build, with the batching, compute dtype and start
        token resolved."""
        tokens, size = batching
        return ActivationSpec(
            model=self.model,
            dataset=dataset_name,
            prompt=self.prompt or default_prompt,
            layers=self.layers,
            dtype=dtype,
            start_token=start_token,
            random_init=self.random_init,
            limit=self.limit,
            max_tokens_per_batch=self.max_tokens_per_batch or tokens,
            max_batch_size=self.max_batch_size or size,
        )

    def command(self) -> str:
        """The ``python -m core build`` line that rebuilds these results."""
        parts = [
            "python -m core build",
            f"--model {self.model}",
            f"--dataset {self.dataset_name()}",
        ]
        if self.prompt:
            parts.append(f"--prompt {self.prompt}")
        if self.random_init:
            parts.append("--random-init")
        if self.limit:
            parts.append(f"--limit {self.limit}")
        if self.layers is not None:
            parts.append("--layers " + ",".join(str(layer) for layer in self.layers))
        if self.probe.method != "loo":
            parts.append(f"--method {self.probe.method}")
        if self.probe.target != "latlon":
            parts.append(f"--target {self.probe.target}")
        return " ".join(parts)
