"""The learner's own data: an OpenAI chat JSONL file, validated first, split into train and held-out eval rows.

``load_user_data("support.jsonl")`` checks the file with ``ftlab validate`` (the same rules as OpenAI's
fine-tuning API), stops with one line naming every bad line when it is invalid, and otherwise returns
``(train_rows, eval_rows)``: 15 % held out deterministically when no ``eval_file`` is given. Identical
conversations always land on the same side, so "held out" means no overlap with anything trained on::

    train_rows, eval_rows = load_user_data("data/my_support.jsonl")          # 85 / 15
    train_rows, eval_rows = load_user_data("train.jsonl", "eval.jsonl")      # both validated

A bad file raises ``ParameterError("train_file: line 3: missing_content: ...; line 9: ...")``.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from ftlab.errors import FtlabError, ParameterError

__all__ = ["MAX_LINES_NAMED", "exact_match_rate", "load_user_data", "normalize_reply", "read_checked",
           "reference_accuracy", "reference_reply", "sample_generations", "split_rows", "user_data_params"]


MAX_LINES_NAMED = 12  # a message naming more bad lines than this would be a wall of text


def _key(messages: list[dict[str, Any]]) -> str:
    return json.dumps([(m.get("role"), m.get("content")) for m in messages], sort_keys=True, ensure_ascii=False)


def read_checked(path: str, *, param: str = "train_file") -> list[dict[str, Any]]:
    """Validate ``path`` with ``ftlab validate`` and return its rows ``{"messages", "line"}``.

    Raises ``ParameterError`` with one line naming each bad line (``train_file: line 3: ...; line 9: ...``).
    Warnings (duplicates, personal data, ...) do not stop it.
    """
    from ftlab.validate import validate_file

    p = Path(path).expanduser()
    if not p.is_file():
        what = "is a folder" if p.is_dir() else "no such file"
        raise ParameterError(f"{param}: {path!r}: {what} (looked in {p.resolve()}); give an OpenAI chat JSONL file")
    try:
        report = validate_file(p)
    except FtlabError as exc:
        raise ParameterError(f"{param}: {exc}") from None
    if not report.ok:
        named = [(f"line {f.line}" if f.line is not None else "file") + f": {f.code}: {f.message}"
                 for f in report.errors[:MAX_LINES_NAMED]]
        more = len(report.errors) - len(named)
        tail = f"; … and {more} more (ftlab validate {path} lists them all)" if more > 0 else ""
        raise ParameterError(f"{param}: {path} is not a valid chat fine-tuning file, nothing was trained: "
                             + "; ".join(named) + tail)
    rows = []
    for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            rows.append({"messages": json.loads(line)["messages"], "line": n})
    return rows


def split_rows(rows: list[dict[str, Any]], eval_fraction: float = 0.15, seed: int = 0
               ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Hold out ``eval_fraction`` of the distinct conversations (at least one), deterministically from ``seed``.

    Duplicates stay together, so no held-out conversation is also trained on. Rows keep their file order.
    Example: ``split_rows(rows_of_40)`` gives 34 train and 6 eval rows, the same ones on every machine.
    """
    if not 0 < eval_fraction < 1:
        raise ParameterError(f"eval_fraction = {eval_fraction}: must be between 0 and 1 (e.g. 0.15)")
    keys = sorted({_key(r["messages"]) for r in rows})
    if len(keys) < 2:
        raise ParameterError("train_file: fewer than 2 distinct conversations: nothing to hold out for evaluation; "
                             "add examples or pass eval_file")
    random.Random(seed).shuffle(keys)
    held = set(keys[: max(1, round(eval_fraction * len(keys)))])
    train = [r for r in rows if _key(r["messages"]) not in held]
    evals = [r for r in rows if _key(r["messages"]) in held]
    return train, evals


def load_user_data(train_file: str, eval_file: str | None = None, *, eval_fraction: float = 0.15,
                   seed: int = 0, param: str = "train_file") -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Validate the learner's JSONL file(s) and return ``(train_rows, eval_rows)`` of ``{"messages", "line"}``.

    Without ``eval_file``, ``eval_fraction`` of the conversations are held out (``split_rows``). With it, the
    eval file is validated too, and a conversation that is also in the training file is an error (it would not
    be held out). Example: ``load_user_data("tests/data/userdata/plant_care.jsonl")`` -> 34 + 6 rows.
    """
    train = read_checked(train_file, param=param)
    if not eval_file:
        return split_rows(train, eval_fraction, seed)
    evals = read_checked(eval_file, param="eval_file")
    seen = {_key(r["messages"]) for r in train}
    overlap = [r["line"] for r in evals if _key(r["messages"]) in seen]
    if overlap:
        lines = ", ".join(map(str, overlap[:MAX_LINES_NAMED])) + (" …" if len(overlap) > MAX_LINES_NAMED else "")
        raise ParameterError(f"eval_file: line(s) {lines} also appear in {train_file}: held-out data must not be "
                             "trained on; remove them from one of the files")
    return train, evals


def user_data_params(train_file: str = "", eval_file: str = "", *, seed: int = 0
                     ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A notebook's ``train_file``/``eval_file`` parameters, checked: ``([], [])`` when ``train_file`` is empty,
    else :func:`load_user_data`. An ``eval_file`` without a ``train_file`` is a one-line ``ParameterError``.
    Example: ``user_data_params("", "")`` -> ``([], [])``.
    """
    if eval_file and not train_file:
        raise ParameterError(f"parameter 'eval_file' = {eval_file!r} needs train_file: give the data to train on too, "
                             "or leave eval_file empty")
    return load_user_data(train_file, eval_file or None, seed=seed) if train_file else ([], [])


def normalize_reply(text: str) -> str:
    """A reply reduced to what matters for exact match: Unicode-normalized, straight quotes, lower case, single
    spaces, no surrounding whitespace or final period. Example: ``normalize_reply(" Team: Network.\\n") == "team: network"``.
    """
    import unicodedata

    text = unicodedata.normalize("NFKC", text).translate(str.maketrans("‘’“”", "''\"\""))
    return " ".join(text.lower().split()).rstrip(".").strip()


def reference_reply(row: dict[str, Any]) -> str:
    """The held-out assistant message of a row (its last assistant turn)."""
    return next((m.get("content") or "" for m in reversed(row["messages"]) if m.get("role") == "assistant"), "")


def exact_match_rate(replies: list[str], rows: list[dict[str, Any]]) -> float:
    """Share of replies equal to the held-out assistant message after :func:`normalize_reply`."""
    hits = [normalize_reply(r) == normalize_reply(reference_reply(row)) for r, row in zip(replies, rows, strict=True)]
    return sum(hits) / max(len(hits), 1)


def sample_generations(rows: list[dict[str, Any]], before: list[str], after: list[str], n: int = 3
                       ) -> list[dict[str, str]]:
    """``n`` held-out examples side by side: the last user message, the reference reply, before and after."""
    out = []
    for row, b, a in list(zip(rows, before, after, strict=True))[:n]:
        prompt = next((m.get("content") or "" for m in reversed(row["messages"]) if m.get("role") == "user"), "")
        out.append({"prompt": prompt, "reference": reference_reply(row), "before": b, "after": a})
    return out


def reference_accuracy(model, tokenizer, rows: list[dict[str, Any]], **gen: Any) -> tuple[float, list[str]]:
    """Exact match of greedy replies against the rows' held-out assistant messages (:func:`exact_match_rate`), the
    target score for the learner's own data. Returns ``(accuracy, replies)``, like ``probes.target_accuracy``.
    Example: ``reference_accuracy(model, tok, eval_rows, max_new_tokens=64)[0]`` -> 0.4 when 2 of 5 replies match.
    """
    from ftlab.generation import chat_generate

    replies = chat_generate(model, tokenizer, [r["messages"] for r in rows], **gen)
    return exact_match_rate(replies, rows), replies

