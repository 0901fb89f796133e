"""Files a user would bring: JSONL writers and readers, a valid upload file and a deliberately broken one.

Example: ``write_toy_files("data")["upload"]`` is ``data/support_upload.jsonl``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ftlab.data.support import support_splits

__all__ = ["read_jsonl", "to_openai_record", "write_jsonl", "write_malformed_file", "write_toy_files",
           "write_upload_file"]


def to_openai_record(example: dict[str, Any]) -> dict[str, Any]:
    """Only the keys OpenAI accepts (``messages``), without the scoring fields."""
    return {"messages": example["messages"]}


def write_jsonl(rows: Iterable[dict[str, Any]], path: str | os.PathLike[str], *, openai_only: bool = True) -> Path:
    """Write examples as JSONL (one JSON object a line, UTF-8). Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(to_openai_record(row) if openai_only else row, ensure_ascii=False) + "\n")
    return path


def read_jsonl(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read a JSONL file of examples (no validation: see ``ftlab.validate`` for that)."""
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def write_upload_file(path: str | os.PathLike[str], n: int = 50, seed: int = 0) -> Path:
    """A valid OpenAI fine-tuning upload file of ``n`` (>= 10) support examples."""
    if n < 10:
        raise ValueError("OpenAI requires at least 10 examples; use n >= 10")
    return write_jsonl(support_splits(seed)["train"][:n], path)


def write_malformed_file(path: str | os.PathLike[str], seed: int = 0) -> Path:
    """A deliberately broken upload file for the validator lesson. Its problems, by line:

    3 invalid JSON · 5 unknown role · 7 no assistant message · 9 a message without content ·
    11 an e-mail address and a phone number (personal data, a warning) · 12 a duplicate of line 1.
    """
    rows = [json.dumps(to_openai_record(r)) for r in support_splits(seed)["train"][:12]]
    bad = list(rows)
    bad[2] = rows[2][:-5]  # truncated JSON
    r = json.loads(rows[4])
    r["messages"][1]["role"] = "customer"
    bad[4] = json.dumps(r)
    r = json.loads(rows[6])
    r["messages"] = r["messages"][:2]
    bad[6] = json.dumps(r)
    r = json.loads(rows[8])
    del r["messages"][1]["content"]
    bad[8] = json.dumps(r)
    r = json.loads(rows[10])
    r["messages"][1]["content"] += " Reach me at jane.doe@example.com or +1 415 555 0134."
    bad[10] = json.dumps(r)
    bad[11] = rows[0]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(bad) + "\n", encoding="utf-8")
    return path


def write_toy_files(folder: str | os.PathLike[str], seed: int = 0) -> dict[str, Path]:
    """Write the files a learner would bring: train/validation/test JSONL, an upload file, a malformed file."""
    folder = Path(folder)
    sp = support_splits(seed)
    files = {name: write_jsonl(rows, folder / f"support_{name}.jsonl") for name, rows in sp.items()}
    files["upload"] = write_upload_file(folder / "support_upload.jsonl", 50, seed)
    files["malformed"] = write_malformed_file(folder / "support_malformed.jsonl", seed)
    return files
