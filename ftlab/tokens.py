"""Exact OpenAI token counts, offline.

tiktoken downloads its vocabularies on first use, which fails without a network. The
registry package ``bpe-openai`` ships ``o200k_base`` and ``cl100k_base`` byte for byte
(their sha256 equal the hashes tiktoken expects), so ftlab seeds tiktoken's cache from
them and then uses tiktoken itself: the counts are tiktoken's own.
"""

from __future__ import annotations

import gzip
import hashlib
import os
from functools import cache
from pathlib import Path

from ftlab.errors import FtlabError

__all__ = ["EXPECTED_SHA256", "base_model", "count_chat_tokens", "count_tokens", "encoding_name_for_model",
           "get_encoding"]


_URLS = {
    "o200k_base": "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
    "cl100k_base": "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
}
# What tiktoken checks the downloaded files against (tiktoken_ext/openai_public.py).
EXPECTED_SHA256 = {
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
}

# Base-model families and their encodings. Decide from the *base* model: tiktoken maps
# "ft:gpt-4.1..." names to cl100k_base by prefix, which is wrong for gpt-4.1 fine-tunes.
_O200K_PREFIXES = ("gpt-4.1", "gpt-4o", "gpt-5", "o1", "o3", "o4", "gpt-oss", "chatgpt-4o")
_CL100K_PREFIXES = ("gpt-4", "gpt-3.5", "text-embedding-3", "text-embedding-ada-002", "babbage-002", "davinci-002")


def base_model(model: str) -> str:
    """The base model behind a fine-tuned name.

    Example: ``base_model("ft:gpt-4.1-mini-2025-04-14:acme::abc123") == "gpt-4.1-mini-2025-04-14"``.
    """
    if model.startswith("ft:"):
        return model.split(":")[1]
    return model


def encoding_name_for_model(model: str) -> str:
    """The tiktoken encoding of a model, decided from its base model.

    Example: ``encoding_name_for_model("ft:gpt-4.1:org::x") == "o200k_base"`` and
    ``encoding_name_for_model("gpt-3.5-turbo") == "cl100k_base"``.
    """
    if model in _URLS:
        return model
    name = base_model(model).lower()
    if name.startswith(_O200K_PREFIXES):
        return "o200k_base"
    if name.startswith(_CL100K_PREFIXES):
        return "cl100k_base"
    raise FtlabError(
        f"unknown OpenAI model {model!r}: cannot pick a tokenizer. Use a gpt-4.1/gpt-4o/o4 family name "
        "(o200k_base) or gpt-3.5/gpt-4 (cl100k_base), or pass an encoding name: o200k_base, cl100k_base"
    )


def _seed_tiktoken_cache() -> Path:
    """Copy bpe-openai's vocabularies into tiktoken's cache, verifying their sha256."""
    import importlib.resources

    cache = Path(os.environ.get("TIKTOKEN_CACHE_DIR") or Path.home() / ".cache" / "ftlab" / "tiktoken")
    cache.mkdir(parents=True, exist_ok=True)
    os.environ["TIKTOKEN_CACHE_DIR"] = str(cache)
    data = importlib.resources.files("bpe_openai") / "data"
    for name, url in _URLS.items():
        target = cache / hashlib.sha1(url.encode()).hexdigest()
        if target.exists() and hashlib.sha256(target.read_bytes()).hexdigest() == EXPECTED_SHA256[name]:
            continue
        raw = gzip.decompress((data / f"{name}.tiktoken.gz").read_bytes())
        digest = hashlib.sha256(raw).hexdigest()
        if digest != EXPECTED_SHA256[name]:
            raise FtlabError(f"bpe-openai's {name} vocabulary has sha256 {digest}, not tiktoken's expected hash")
        tmp = target.with_suffix(".tmp")
        tmp.write_bytes(raw)
        tmp.replace(target)
    return cache


@cache
def get_encoding(name_or_model: str):
    """A tiktoken ``Encoding`` for an encoding name or a model name, without any network.

    Example: ``len(get_encoding("gpt-4.1").encode("hello world")) == 2``.
    """
    import tiktoken

    _seed_tiktoken_cache()
    return tiktoken.get_encoding(encoding_name_for_model(name_or_model))


def count_tokens(text: str, model: str = "gpt-4.1-mini") -> int:
    """The exact number of tokens in ``text`` for ``model``'s encoding."""
    return len(get_encoding(model).encode(text, disallowed_special=()))


def count_chat_tokens(messages: list[dict], model: str = "gpt-4.1-mini") -> int:
    """Tokens of a chat example, counted as the OpenAI cookbook does.

    Each message costs 3 tokens of framing plus its fields' tokens (1 more for a ``name``),
    and the reply is primed with 3 more tokens. Non-string fields (e.g. ``tool_calls``)
    are counted on their JSON text.
    """
    import json

    enc = get_encoding(model)
    total = 3
    for message in messages:
        total += 3
        for key, value in message.items():
            if key == "weight":
                continue
            text = value if isinstance(value, str) else json.dumps(value)
            total += len(enc.encode(text, disallowed_special=()))
            if key == "name":
                total += 1
    return total
