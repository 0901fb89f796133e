"""Fuzzing ``ftlab validate --method dpo``: at least 10,000 generated inputs per run, never a crash.

The same properties as ``tests/test_fuzz_validate.py`` (whose byte-level strategies it reuses), for the
preference validator: no exception, strict JSON out, ``ok`` exactly when there are no errors, known codes,
one-line messages, line numbers within the file; the CLI exits 0 or 1, and 2 only for usage/IO problems.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys

from hypothesis import strategies as st

from ftlab.validate import ROLES
from ftlab.validate_dpo import DPO_CODES, validate_dpo_bytes
from tests import test_fuzz_validate as fuzz_validate
from tests.test_fuzz_validate import (
    JSONS,
    KNOWN_CODES,
    ODD_TEXT,
    TOKEN_SOUP,
    files_of,
    nested,
    random_json,
)

BUDGET = {"bytes": 2000, "token_soup": 1500, "near_valid": 3000, "structures": 2500, "unicode": 600,
          "nesting": 300, "huge": 100}
assert sum(BUDGET.values()) >= 10_000
CODES = KNOWN_CODES | set(DPO_CODES)

_TOOLS = [{"type": "function", "function": {"name": "track", "parameters": {"type": "object", "properties": {}}}}]
_CALL = {"id": "c1", "type": "function", "function": {"name": "track", "arguments": '{"order": "1234"}'}}
VALID = [
    {"input": {"messages": [{"role": "system", "content": "You are support."}, {"role": "user", "content": "Where is 1234?"}]},
     "preferred_output": [{"role": "assistant", "content": "It ships today. Thank you!"}],
     "non_preferred_output": [{"role": "assistant", "content": "It ships today."}]},
    {"input": {"messages": [{"role": "user", "content": "track 1234"}], "tools": _TOOLS, "parallel_tool_calls": True},
     "preferred_output": [{"role": "assistant", "tool_calls": [_CALL]}],
     "non_preferred_output": [{"role": "assistant", "content": "I cannot track orders."}]},
    {"input": {"messages": [{"role": "user", "content": "mail jane.doe@example.com"}, {"role": "assistant", "content": "ok"}]},
     "preferred_output": [{"role": "assistant", "content": "same"}],
     "non_preferred_output": [{"role": "assistant", "content": "same"}]},
]
DPO_KEYS = ["input", "preferred_output", "non_preferred_output", "messages", "role", "content", "tools",
            "tool_calls", "parallel_tool_calls", "function", "name", "arguments", "type", "x"]


def check(blob: bytes) -> dict:
    """The SFT fuzz test's contract check, for the preference validator and its codes."""
    return fuzz_validate.check(blob, validate_dpo_bytes, CODES)


def fuzz(name: str, strategy, *examples: bytes) -> None:
    fuzz_validate.fuzz(name, strategy, *examples, budget=BUDGET, checker=check)


@st.composite
def mutated_line(draw) -> bytes:
    """A valid preference line with a value swapped at a random path, a key deleted, or its text spliced."""
    ex = json.loads(json.dumps(draw(st.sampled_from(VALID))))
    op = draw(st.sampled_from(["keep", "value", "value", "delete_key", "text", "text"]))
    if op in ("value", "delete_key"):
        node, path = ex, []
        for _ in range(draw(st.integers(0, 6))):
            kids = list(node) if isinstance(node, dict) else list(range(len(node))) if isinstance(node, list) else []
            if not kids:
                break
            k = draw(st.sampled_from(kids))
            path.append(k)
            if not isinstance(node[k], dict | list):
                break
            node = node[k]
        parent = ex
        for k in path[:-1]:
            parent = parent[k]
        if path:
            if op == "delete_key" and isinstance(parent, dict):
                del parent[path[-1]]
            else:
                parent[path[-1]] = draw(JSONS | ODD_TEXT)
    raw = json.dumps(ex, ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")
    if op == "text" and raw:
        i = draw(st.integers(0, len(raw)))
        j = draw(st.integers(i, min(len(raw), i + 8)))
        raw = raw[:i] + draw(st.sampled_from([b"", b"{", b"}", b"[", b"]", b'"', b",", b":", b"\\ud800", b"\xff",
                                              b"NaN", b"\n", b"\r"])) + raw[j:]
    return raw


def structured_file(seed: int) -> bytes:
    """Up to 12 preference-shaped lines built from random parts (plain ``random``, seeded by Hypothesis)."""
    rng = random.Random(seed)
    lines = []
    for _ in range(rng.randrange(13)):
        if rng.random() < 0.15:
            ex = random_json(rng)
        else:
            ex = {}
            for key in ("input", "preferred_output", "non_preferred_output", rng.choice(DPO_KEYS)):
                if rng.random() < 0.85:
                    if key == "input" and rng.random() < 0.8:
                        ex[key] = {"messages": [random_json(rng, 1) for _ in range(rng.randrange(5))]}
                        if rng.random() < 0.3:
                            ex[key][rng.choice(["tools", "functions", "parallel_tool_calls", "x"])] = random_json(rng, 2)
                    elif rng.random() < 0.7:
                        ex[key] = [random_json(rng, 1) for _ in range(rng.choice([0, 1, 1, 1, 2]))]
                    else:
                        ex[key] = random_json(rng, 1)
        lines.append(json.dumps(ex, ensure_ascii=rng.random() < 0.5).encode("utf-8", "surrogatepass"))
    return rng.choice([b"\n", b"\r\n", b"\n\n"]).join(lines) + rng.choice([b"", b"\n"])


@st.composite
def unicode_file(draw) -> bytes:
    rows = []
    for _ in range(draw(st.integers(0, 12))):
        ex = json.loads(json.dumps(draw(st.sampled_from(VALID))))
        m = draw(st.sampled_from(ex["input"]["messages"] + ex["preferred_output"] + ex["non_preferred_output"]))
        field = draw(st.sampled_from(["content", "role", "name", "key"]))
        text = draw(ODD_TEXT)
        if field == "key":
            m[text] = "x"
        else:
            m[field] = text
        rows.append(json.dumps(ex, ensure_ascii=draw(st.booleans())))
    sep = draw(st.sampled_from(["\n", "\r\n", "\u2028", "\x85", "\n\n"]))
    how = draw(st.sampled_from(["utf-8", "utf-8", "utf-8-sig", "utf-16", "latin-1", "cp1252"]))
    return (sep.join(rows) + "\n").encode(how, "surrogatepass" if how == "utf-8" else "replace")


@st.composite
def nested_dpo(draw) -> bytes:
    """Deep nesting inside a preference line, or the SFT fuzzer's nested lines."""
    if draw(st.booleans()):
        return draw(nested())
    depth = draw(st.integers(1, 5000) | st.sampled_from([990, 1000, 1500, 100_000]))
    core = draw(st.sampled_from(["[" * depth + "]" * depth, '{"a":' * depth + "1" + "}" * depth, "[" * depth]))
    where = draw(st.sampled_from(["input", "preferred_output", "content", "tools"]))
    ex = json.loads(json.dumps(VALID[0]))
    if where == "content":
        ex["preferred_output"][0]["content"] = "__X__"
    elif where == "tools":
        ex["input"]["tools"] = "__X__"
    else:
        ex[where] = "__X__"
    return json.dumps(ex).replace('"__X__"', core).encode()


@st.composite
def huge(draw) -> bytes:
    unit = draw(st.sampled_from([" ", "\t", "a", "é", "%", "@", "\\n", "4111 ", "😀", "\\ud800"]))
    blob = unit * draw(st.integers(1, 300_000 // len(unit)))
    ex = json.loads(json.dumps(VALID[0]))
    text = json.loads(f'"{blob}"') if "\\" in blob else blob
    target = draw(st.sampled_from(["in", "pref", "role"]))
    if target == "in":
        ex["input"]["messages"][1]["content"] = text
    elif target == "pref":
        ex["preferred_output"][0]["content"] = text
    else:
        ex["non_preferred_output"][0]["role"] = text
    return json.dumps(ex, ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass") + b"\n"


DPO_SOUP = st.lists(st.sampled_from([b'"input"', b'"preferred_output"', b'"non_preferred_output"', b'{"messages":',
                                     b'[{"role": "assistant", "content": "x"}]', b"{", b"}", b"[", b"]", b":", b","]),
                    max_size=30).map(b"".join)


def test_random_bytes():
    fuzz("bytes", st.binary(max_size=600), b"\xff\xfe{}", b"\xef\xbb\xbf\n\n{}")


def test_json_token_soup():
    fuzz("token_soup", files_of(TOKEN_SOUP | DPO_SOUP))


def test_near_valid_preference_lines():
    fuzz("near_valid", files_of(mutated_line(), min_lines=1))


def test_random_structures():
    fuzz("structures", st.integers(0, 2**64).map(structured_file))


def test_odd_unicode():
    fuzz("unicode", unicode_file())


def test_deep_nesting():
    fuzz("nesting", nested_dpo())


def test_huge_lines():
    fuzz("huge", huge())


def test_the_fuzzer_reaches_the_dpo_checks():
    """The generated inputs exercise every DPO-specific code (else the fuzzing proves little)."""
    seen: set[str] = set()
    for seed in range(3000):
        r = validate_dpo_bytes(structured_file(seed))
        seen |= {f.code for f in r.errors + r.warnings}
    seen |= set(validate_dpo_bytes(b"\n".join(json.dumps(v).encode() for v in VALID)).codes("warnings"))
    assert {"missing_input", "invalid_output", "input_not_ending_on_user", "identical_outputs",
            "unrecognized_role", "missing_messages_list"} <= seen, seen
    assert ROLES  # the SFT roles are the ones the DPO messages use


def test_cli_subprocess_exit_codes_and_strict_json(tmp_path):
    nasty = tmp_path / "nasty.jsonl"
    nasty.write_bytes(b"\xef\xbb\xbf" + structured_file(7) + b"\r\n\xff\xfe\n[" * 3 + b"\n")
    good = tmp_path / "good.jsonl"
    good.write_bytes(b"\n".join(json.dumps(VALID[0]).replace("1234", str(i)).encode() for i in range(10)))
    for path, want in [(nasty, 1), (good, 0), (tmp_path / "missing.jsonl", 2), (tmp_path, 2)]:
        p = subprocess.run([sys.executable, "-m", "ftlab", "validate", str(path), "--method", "dpo", "--json"],
                           capture_output=True, timeout=300, env={**os.environ, "PYTHONIOENCODING": "ascii"})
        assert p.returncode == want, (path, p.returncode, p.stderr[-2000:])
        if want == 2:
            assert p.stdout == b"" and p.stderr.decode().count("\n") == 1, p.stderr
            continue
        doc = json.loads(p.stdout.decode("ascii"))
        assert doc["ok"] is (want == 0)
