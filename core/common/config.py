"""Run specifications: one frozen dataclass per run.

`ActivationSpec` and `ProbeSpec` are hashed into the cache keys; `BuildConfig` is one
build whole; `AnalysisConfig` and `SteerConfig` are the options of an analysis and of a
steering run, recorded in their manifests (their artifacts live beside the results they
read, keyed by those results). A field's `option` metadata is its ``python -m core``
option: the CLI builds its parser from these fields, so an option and a field cannot
drift apart.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass, field
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
    # the document-start token: "auto" (the model's registered one, else the tokenizer's),
    # "none" (no start token) or a token of the vocabulary; the resolved one is in the key
    start_token: str = "auto"
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
        if self.start_token != "auto":
            parts.append(f"--start-token {self.start_token}")
        return " ".join(parts)


def option(flag: str, help: str, **argparse_options: Any) -> dict[str, Any]:
    """A config field's metadata: its CLI option (`flag`, `help` and any other argparse
    keyword: `type`, `action`, `choices`, `metavar`). The field's default is the option's."""
    return {"option": {"flag": flag, "help": help, **argparse_options}}


def parse_layers(text: str) -> tuple[int, ...]:
    """'0,5,10' or '0-29' or '0-29:2' -> sorted distinct layers."""
    out: list[int] = []
    for part in text.split(","):
        step = 1
        if ":" in part:
            part, step_text = part.split(":")
            step = int(step_text)
        if "-" in part:
            lo, hi = part.split("-")
            out.extend(range(int(lo), int(hi) + 1, step))
        else:
            out.append(int(part))
    return tuple(sorted(set(out)))


def _split(convert: Callable[[str], Any]) -> Callable[[str], tuple[Any, ...]]:
    def parse(text: str) -> tuple[Any, ...]:
        return tuple(convert(v.strip()) for v in text.split(",") if v.strip())

    parse.__name__ = f"comma-separated {getattr(convert, '__name__', 'value')}s"
    return parse


parse_names = _split(str)
parse_floats = _split(float)
parse_ints = _split(int)


def _as_tuples(config: Any) -> None:
    """Sequences given for tuple fields (lists from a notebook or JSON) become tuples."""
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if isinstance(value, list):
            object.__setattr__(config, f.name, tuple(value))


def _json_safe(config: Any) -> dict[str, Any]:
    return {
        k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()
    }


MLP_CV = ("reference", "every_layer")


@dataclass(frozen=True)
class AnalysisConfig:
    """The options of one analysis (``python -m core analyze``), recorded in its manifest.

    `core.analysis.run.run_analysis` reads the options of one activation source;
    `core.analysis.build.analyze` also reads `rows`, `transfer_prompts` and
    `mlp_depths`, which say what it builds for `run_analysis` to read.
    """

    group_column: str | None = field(
        default=None,
        metadata=option(
            "--group",
            "block column for the hold-out (default: the paper's block for the dataset, "
            "else its group column, then entity type)",
        ),
    )
    transfer_prompts: tuple[str, ...] = field(
        default=(),
        metadata=option(
            "--transfer-prompts",
            "comma-separated other prompts for cross-prompt transfer, or 'all'",
            type=parse_names,
        ),
    )
    mlp: bool = field(
        default=True,
        metadata=option(
            "--no-mlp", "skip the MLP probe (the slowest analysis)", action="store_false"
        ),
    )
    mlp_hidden: int = field(
        default=128,
        metadata=option(
            "--mlp-hidden",
            "MLP hidden units at the middle of the width grid (a quarter and four times "
            "it are tried too, and the grid grows past an edge choice)",
            type=int,
        ),
    )
    k_neurons: int = field(
        default=10,
        metadata=option("--neurons", "top neurons listed per layer and target", type=int),
    )
    rows: int | None = field(
        default=None,
        metadata=option(
            "--rows",
            "analyse only the first N entities (a seeded sample) of the build",
            type=int,
        ),
    )
    mlp_depths: tuple[float, ...] | None = field(
        default=None,
        metadata=option(
            "--mlp-depths",
            "fit the MLP probe only at these fractions of the depth, e.g. 0,0.5,1 "
            "(and at the chosen layer; default: every layer)",
            type=parse_floats,
        ),
    )
    mlp_layers: tuple[int, ...] | None = field(
        default=None,
        metadata=option(
            "--mlp-layers",
            "fit the MLP probe only at these layers, e.g. 5,10 (and at the chosen layer; "
            "with --mlp-depths, at both; default: every layer)",
            type=parse_layers,
        ),
    )
    mlp_cv: str = field(
        default="reference",
        metadata=option(
            "--mlp-cv",
            "reference: choose the MLP probe's weight decay and width by inner CV at the "
            "chosen layer and reuse them at every layer; every_layer: search at each (slow)",
            choices=MLP_CV,
        ),
    )
    holdout_layers: tuple[int, ...] | None = field(
        default=None,
        metadata=option(
            "--holdout-layers",
            "layers of the block hold-out and the prompt transfer (default: the layer "
            "with the best training leave-one-out R2)",
            type=parse_layers,
        ),
    )
    seed: int = field(
        default=0,
        metadata=option(
            "--seed", "seed of the shuffled-target control and the MLP probe", type=int
        ),
    )

    def __post_init__(self) -> None:
        _as_tuples(self)
        if self.mlp_cv not in MLP_CV:
            raise ValueError(f"mlp_cv must be one of {MLP_CV}, got {self.mlp_cv!r}")
        if self.mlp_depths is not None and any(not 0 <= d <= 1 for d in self.mlp_depths):
            raise ValueError(
                f"--mlp-depths: each value must lie in [0, 1], got {list(self.mlp_depths)}"
            )

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe (tuples as lists), for the analysis manifest's "config"."""
        return _json_safe(self)


@dataclass(frozen=True)
class SteerConfig:
    """The options of one steering run (``python -m core steer``;
    `core.steer.evaluate.evaluate_steering`), recorded in its manifest. The
    pre-registered layer and strength 1 are always run besides these."""

    layers: tuple[int, ...] | None = field(
        default=None,
        metadata=option(
            "--layer",
            "layers to push at, e.g. 7,15,22 (default: a quarter, half, three quarters deep)",
            type=parse_layers,
        ),
    )
    n: int = field(default=200, metadata=option("--n", "test entities sampled per seed", type=int))
    strengths: tuple[float, ...] = field(
        default=(1.0, 2.0, 4.0, 8.0),
        metadata=option(
            "--strengths",
            "multiples of the change that makes the probe read the target (1 is always run)",
            type=parse_floats,
        ),
    )
    seeds: tuple[int, ...] = field(
        default=(0, 1, 2),
        metadata=option(
            "--seeds",
            "seeds (entity sample, partners, random directions), pooled; at least 3 for "
            "the headline",
            type=parse_ints,
        ),
    )
    question: str | None = field(
        default=None,
        metadata=option("--question", "question template with {name} (default: per dataset)"),
    )

    def __post_init__(self) -> None:
        _as_tuples(self)
        if not self.strengths or any(v < 0 for v in self.strengths):
            raise ValueError(f"--strengths: non-negative numbers, got {list(self.strengths)}")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"--seeds: distinct integers, got {list(self.seeds)}")
        if self.question is not None and "{name}" not in self.question:
            raise ValueError(f"--question must contain {{name}}, got {self.question!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe (tuples as lists), for the steering manifest's "config"."""
        return _json_safe(self)
