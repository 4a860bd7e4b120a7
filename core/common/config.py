"""Run specifications: one frozen dataclass per run.

`ActivationSpec` and `ProbeSpec` are hashed into the cache keys; `BuildConfig` is one
build whole; `AnalysisConfig` and `SteerConfig` are the options of an analysis and of a
steering run, recorded in their manifests (their artifacts live beside the results they
read, keyed by those results). A field's `option` metadata is its ``python -m core``
option: the CLI builds its parser from these fields (:func:`option_fields`), and every
printed or recorded rebuild command is written back from them (:func:`config_argv`,
:func:`command_line`), so an option, a field and a command cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import re
import shlex
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.common.hashing import sha256_json

# the embedded default model (= core.extract.models.DEFAULT_MODEL, a later module; a test
# keeps them equal): the CLI's --model when none is given
DEFAULT_MODEL = "smollm2-135m"
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


def option(
    flag: str, help: str, build_only: bool = False, **argparse_options: Any
) -> dict[str, Any]:
    """A config field's metadata: its CLI option (`flag`, `help` and any other argparse
    keyword: `type`, `action`, `choices`, `metavar`). The field's default is the option's;
    only a field without one (a build's model) may give the option a `default`.
    `build_only`: a `BuildConfig` field that `analyze` and `steer` do not take."""
    return {"option": {"flag": flag, "help": help, **argparse_options}, "build_only": build_only}


PROBE_DEVICES = ("auto", "numpy", "cpu", "cuda")
COMPUTE_DEVICES = ("auto", "cpu", "cuda")


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


PROBE_TARGETS = ("latlon", "globe")


@dataclass(frozen=True)
class ProbeSpec:
    """How probes are fitted on an activation cache."""

    alpha_grid: tuple[float, float, int] = DEFAULT_ALPHA_GRID
    alpha_scale: str = "trace"  # grid in units of trace(Xc^T Xc)/d ("none": raw penalties)
    method: str = field(
        default="loo",
        metadata=option(
            "--method",
            "alpha selection: exact leave-one-out or GCV",
            choices=("loo", "gcv"),
            build_only=True,
        ),
    )
    target: str = field(
        default="latlon",
        metadata=option(
            "--target",
            "space probes: read lat/lon, or (x, y, z) on the unit sphere mapped back to "
            "lat/lon (no seam at ±180°)",
            choices=PROBE_TARGETS,
            build_only=True,
        ),
    )

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
    knobs change how fast a build runs, not its key. Each field but `cache_root` (the
    CLI's global ``--cache-root``) is one option of ``python -m core build``, with the
    same default; `model` alone has none here (the CLI's is the embedded default model).
    """

    # what
    model: str = field(
        metadata=option(
            "--model",
            "registered name (`python -m core models` lists them), model folder, .gguf "
            "file or Hugging Face id",
            default=DEFAULT_MODEL,
        )
    )
    dataset: Any = field(  # str | EntityDataset (core.data is a later module than this one)
        metadata=option("--dataset", "dataset name (see `python -m core datasets`) or a CSV path")
    )
    prompt: str | None = field(
        default=None,
        metadata=option("--prompt", "prompt template name (default: the dataset's main prompt)"),
    )
    limit: int | None = field(
        default=None,
        metadata=option("--limit", "only the first N entities (a seeded sample)", type=int),
    )
    layers: tuple[int, ...] | None = field(
        default=None,
        metadata=option(
            "--layers",
            "subset of layers, e.g. 0-29:2 or 5,10,15 (default: every decoder block)",
            type=parse_layers,
        ),
    )
    random_init: bool = field(
        default=False,
        metadata=option(
            "--random-init",
            "control: a seeded random-initialised copy of the architecture",
            action="store_true",
            build_only=True,
        ),
    )
    probe: ProbeSpec = ProbeSpec()
    start_token: str = field(
        default="auto",
        metadata=option(
            "--start-token",
            'document-start token: "auto" (the model\'s registered one, else the '
            'tokenizer\'s), "none", or a vocabulary token; the resolved one is in the key',
            build_only=True,
        ),
    )
    # how
    device: str = field(
        default="auto",
        metadata=option("--device", "auto: cuda if available", choices=COMPUTE_DEVICES),
    )
    dtype: str = field(
        default="auto",
        metadata=option(
            "--dtype",
            "compute dtype: auto (float32 on CPU, bfloat16 on GPU), float32, bfloat16",
        ),
    )
    max_tokens_per_batch: int | None = field(
        default=None,
        metadata=option(
            "--batch-tokens",
            "token budget per batch, padded tokens (default: 4096 on a CPU, 65536 on a GPU)",
            type=int,
            build_only=True,
        ),
    )
    max_batch_size: int | None = field(
        default=None,
        metadata=option(
            "--batch-size",
            "max entities per batch (default: 64 on a CPU, 1024 on a GPU)",
            type=int,
            build_only=True,
        ),
    )
    probe_device: str = field(
        default="auto",
        metadata=option(
            "--probe-device",
            "where probes are fitted: auto = cuda if available, else numpy (the reference); "
            "cpu = torch on the CPU",
            choices=PROBE_DEVICES,
            build_only=True,
        ),
    )
    trust_remote_code: bool = field(
        default=False,
        metadata=option(
            "--trust-remote-code",
            "allow a hub model's own code to run (off by default)",
            action="store_true",
        ),
    )
    # where
    cache_root: Path | None = None

    def __post_init__(self) -> None:
        _as_tuples(self)
        if self.probe_device is None:  # the numpy solver, as this field once said
            object.__setattr__(self, "probe_device", "numpy")
        if self.probe_device not in PROBE_DEVICES and not self.probe_device.startswith("cuda:"):
            raise ValueError(
                f"probe_device must be one of {PROBE_DEVICES}, got {self.probe_device!r}"
            )

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

    def argv(self, build_only: bool = True) -> list[str]:
        """The options that give this config (`model` and `dataset` always, the rest
        where they differ from their defaults); `build_only=False`: only those that
        `analyze` and `steer` take too."""
        return config_argv(self, build_only=build_only, dataset=self.dataset_name())

    def command(self) -> str:
        """The ``python -m core build`` line that rebuilds these results."""
        return command_line(["build", *self.argv()])


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


def option_fields(config: type) -> Iterator[tuple[tuple[str, ...], dataclasses.Field[Any]]]:
    """(path, field) of each option of a config class, in field order; a field holding
    a config of its own (`BuildConfig.probe`) gives its fields' options, at
    ``("probe", name)``."""
    for f in dataclasses.fields(config):
        if "option" in f.metadata:
            yield (f.name,), f
        elif dataclasses.is_dataclass(f.default):
            for path, inner in option_fields(type(f.default)):
                yield (f.name, *path), inner


def _option_text(value: Any) -> str:
    if isinstance(value, tuple | list):
        return ",".join(_option_text(v) for v in value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


def config_argv(config: Any, build_only: bool = True, **values: Any) -> list[str]:
    """The command-line options that give `config` (an instance of a config class):
    each field without a default, and each that differs from its default, in field
    order. `values`: a top-level field's value as the option writes it (a build's
    in-memory dataset by name). `build_only=False` leaves out `build_only` fields."""
    out: list[str] = []
    for path, f in option_fields(type(config)):
        if f.metadata.get("build_only") and not build_only:
            continue
        value: Any = config
        for name in path:
            value = getattr(value, name)
        value = values.get(path[0], value) if len(path) == 1 else value
        if f.default is not dataclasses.MISSING and value == f.default:
            continue
        spec = f.metadata["option"]
        action = spec.get("action")
        if action in ("store_true", "store_false"):
            out.append(spec["flag"])  # a flag differs from its default only when given
        else:
            out += [spec["flag"], _option_text(value)]
    return out


def command_line(words: Sequence[str]) -> str:
    """``python -m core <words>``, each word shell-quoted: the one way every printed and
    recorded command is written (`shlex.split` gives the words back)."""
    return shlex.join(["python", "-m", "core", *words])


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
