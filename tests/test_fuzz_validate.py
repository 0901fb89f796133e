"""Fuzzing the JSONL validator: at least 10,000 generated inputs per run, never a crash.

Every input goes through ``ftlab.validate.validate_bytes`` in-process; a sample goes through the
``ftlab validate --json`` command line. The properties, for any bytes at all:

- no exception, and no hang (the linear-time guard below);
- the ``--json`` document is strict JSON (no NaN), ``ok`` is true exactly when there are no errors;
- every finding has a known code, a one-line message, and a line number within the file or ``None``;
- the CLI exits 0 (valid) or 1 (errors), 2 only for a usage or I/O problem.

Inputs that once broke the validator are kept twice: as ``@example`` cases below and as files in
``tests/data/fuzz_corpus/`` (large ones gzipped), which every run replays in-process and through the CLI.
``FTLAB_FUZZ_SCALE=10`` multiplies the number of generated inputs for a longer local hunt.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ftlab.validate import ROLES, validate_bytes
from tests.helpers import ROOT

CORPUS = ROOT / "tests" / "data" / "fuzz_corpus"
SCALE = float(os.environ.get("FTLAB_FUZZ_SCALE", "1"))
# Generated inputs per family; they add up to 10,000 per run (the floor).
BUDGET = {"bytes": 3000, "token_soup": 2000, "near_valid": 2000, "structures": 2000, "unicode": 600,
          "nesting": 300, "huge": 100}
assert sum(BUDGET.values()) >= 10_000

KNOWN_CODES = {
    "blank_line", "data_type", "double_encoded_tool_arguments", "duplicate_example", "empty_file",
    "example_missing_assistant_message", "invalid_encoding", "invalid_json", "invalid_tool_call", "invalid_tools",
    "invalid_weight", "message_missing_key", "message_unrecognized_key", "missing_content", "missing_messages_list",
    "missing_system_message", "missing_user_message", "no_trained_messages", "token_limit_assumed",
    "too_few_examples", "too_many_tokens", "tool_arguments_not_object", "unknown_tool", "unrecognized_example_key",
    "unrecognized_role", "utf8_bom", "pii_email", "pii_phone_number", "pii_card_number",
}
FUZZ = settings(deadline=None, database=None, suppress_health_check=list(HealthCheck), print_blob=True)


def check(blob: bytes, validate=validate_bytes, codes: set[str] = KNOWN_CODES) -> dict:
    """Validate ``blob`` and assert the validator's contract; return the ``--json`` document.

    ``validate`` and ``codes``: another validator with the same contract (the DPO one) and its finding codes."""
    r = validate(blob)
    n_lines = blob.count(b"\n") + 1
    doc = json.loads(json.dumps(r.to_dict(), allow_nan=False))
    assert doc["ok"] is r.ok is (not r.errors)
    assert 0 <= r.n_examples <= n_lines
    for f in r.errors + r.warnings:
        assert f.code in codes, f
        assert f.line is None or (type(f.line) is int and 1 <= f.line <= n_lines), f
        assert isinstance(f.message, str) and f.message and "\n" not in f.message, f
    assert r.summary().startswith(("OK", "INVALID"))
    return doc


def fuzz(name: str, strategy, *examples: bytes, budget: dict[str, int] | None = None, checker=None) -> None:
    """Run ``checker`` (default ``check``) on ``budget[name]`` generated inputs (default ``BUDGET``; plus
    ``examples``) and prove they all ran."""
    n = max(1, int((budget or BUDGET)[name] * SCALE))
    checker = checker or check
    ran = []

    def body(blob: bytes) -> None:
        ran.append(len(blob))
        checker(blob)

    for ex in examples:
        body = example(ex)(body)
    settings(FUZZ, max_examples=n)(given(strategy)(body))()
    assert len(ran) >= n, f"only {len(ran)} of {n} {name} inputs ran"


# ---------------------------------------------------------------------------------------------
# Strategies
# ---------------------------------------------------------------------------------------------
_TOOLS = [{"type": "function", "function": {"name": "track", "parameters": {"type": "object", "properties": {}}}}]
_CALL = {"id": "c1", "type": "function", "function": {"name": "track", "arguments": '{"order": "1234"}'}}
VALID = [
    {"messages": [{"role": "system", "content": "You are support."}, {"role": "user", "content": "Where is 1234?"},
                  {"role": "assistant", "content": "It ships today."}]},
    {"messages": [{"role": "user", "content": "track 1234"}, {"role": "assistant", "tool_calls": [_CALL]},
                  {"role": "tool", "tool_call_id": "c1", "content": "shipped"},
                  {"role": "assistant", "content": "It shipped.", "weight": 1}], "tools": _TOOLS},
    {"messages": [{"role": "developer", "content": "Be brief."},
                  {"role": "user", "content": [{"type": "text", "text": "hi"}]},
                  {"role": "assistant", "content": "hello", "weight": 0},
                  {"role": "assistant", "content": "Hello!"}]},
    {"messages": [{"role": "user", "content": "hi"},
                  {"role": "assistant", "function_call": {"name": "f", "arguments": "{}"}},
                  {"role": "function", "name": "f", "content": "ok"}, {"role": "assistant", "content": "done"}],
     "functions": [{"name": "f", "parameters": {"type": "object"}}], "parallel_tool_calls": False},
    {"messages": [{"role": "user", "content": "mail jane.doe@example.com, call +1 415 555 0134"},
                  {"role": "assistant", "content": "card 4111 1111 1111 1111 noted"}]},
]
KEYS = ["messages", "role", "content", "weight", "tool_calls", "function", "function_call", "arguments", "name",
        "tools", "functions", "type", "id", "tool_call_id", "parameters", "text", "image_url", "url",
        "parallel_tool_calls", "x", ""]
_scalar = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.sampled_from(ROLES)
           | st.text(max_size=20) | st.sampled_from(["{}", "[]", '"{\\"a\\": 1}"', '{"order": "1"}', "null"]))
JSONS = st.recursive(_scalar, lambda kids: st.lists(kids, max_size=4)
                     | st.dictionaries(st.sampled_from(KEYS), kids, max_size=5), max_leaves=12)

# Odd Unicode: surrogates, private use, unassigned, controls, line/paragraph separators, RTL marks,
# combining marks, emoji, the BOM character and NUL.
ODD_TEXT = st.text(st.characters(codec=None, categories=None) | st.sampled_from(
    ["\ufeff", "\u2028", "\u2029", "\u202e", "\u0301", "\x00", "\x85", "\x0c", "\r", "\ud800", "\udfff",
     "\U0001f600", "\U0010ffff", "\uffff", "\u00e9", "\u3000"]), max_size=40)

ENDINGS = st.sampled_from([b"\n", b"\r\n", b"\r", b"\n\n", b"\n \n", b"\r\r\n"])
PREFIXES = st.sampled_from([b"", b"", b"", b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff", b"\n", b"\xef\xbb\xbf\xef\xbb\xbf"])


def _encode(text: str, how: str) -> bytes:
    if how == "utf-8":
        return text.encode("utf-8", "surrogatepass")
    return text.encode(how, "replace")


@st.composite
def files_of(draw, line, *, min_lines: int = 0, max_lines: int = 14) -> bytes:
    """A file of ``line`` bytes with random line endings, blank lines, a BOM and a missing final newline."""
    lines = draw(st.lists(line, min_size=min_lines, max_size=max_lines))
    out = draw(PREFIXES)
    for ln in lines:
        out += ln + draw(ENDINGS)
    if draw(st.booleans()) and out.endswith(b"\n"):
        out = out.rstrip(b"\r\n")
    return out


def _dump(value, ensure_ascii: bool) -> bytes:
    return json.dumps(value, ensure_ascii=ensure_ascii).encode("utf-8", "surrogatepass")


@st.composite
def mutated_line(draw) -> bytes:
    """A valid example, changed a little: a value swapped at a random path, or its text cut and spliced."""
    ex = json.loads(json.dumps(draw(st.sampled_from(VALID))))
    op = draw(st.sampled_from(["keep", "value", "value", "delete_key", "text", "text", "text"]))
    if op in ("value", "delete_key"):
        node, path = ex, []
        for _ in range(draw(st.integers(0, 5))):
            kids = list(node) if isinstance(node, dict) else list(range(len(node))) if isinstance(node, list) else []
            if not kids:
                break
            k = draw(st.sampled_from(kids))
            if not isinstance(node[k], dict | list):
                path.append(k)
                break
            node = node[k]
            path.append(k)
        parent = ex
        for k in path[:-1]:
            parent = parent[k]
        if path:
            if op == "delete_key" and isinstance(parent, dict):
                del parent[path[-1]]
            else:
                parent[path[-1]] = draw(JSONS | ODD_TEXT)
    raw = _dump(ex, draw(st.booleans()))
    if op == "text" and raw:
        i = draw(st.integers(0, len(raw)))
        j = draw(st.integers(i, min(len(raw), i + 8)))
        junk = draw(st.sampled_from([b"", b"{", b"}", b"[", b"]", b'"', b",", b":", b"\\", b"\\u", b"\\ud800",
                                     b"\n", b"\r", b"\x00", b"\xff", b"NaN", b"1e999", b"-", b" "]))
        raw = raw[:i] + junk + raw[j:]
    return raw


_ODD = ["\ufeff", "\u2028", "\u202e", "\x00", "\x85", "\ud800", "\udfff", "\U0001f600", "\u00e9", "\u3000", "\r", "\n"]


def random_json(rng: random.Random, depth: int = 0):
    """A random JSON-ish value that leans towards the shapes of a chat example."""
    r = rng.random()
    if depth > 4 or r < 0.45:
        return rng.choice([None, True, False, 0, 1, 2, -1, 2**70, 0.5, 1e308, -0.0, "", "x", rng.choice(ROLES),
                           "customer", "{}", "[]", '"{\\"a\\": 1}"', '{"order": "1"}', "".join(
                               rng.choice(_ODD + list("ab {}[]:,@%1")) for _ in range(rng.randrange(12)))])
    if r < 0.65:
        return [random_json(rng, depth + 1) for _ in range(rng.randrange(5))]
    if r < 0.8:
        return {rng.choice(KEYS): random_json(rng, depth + 1) for _ in range(rng.randrange(5))}
    msg = {"role": rng.choice([*ROLES, "customer", "", 1, None, []]), "content": random_json(rng, depth + 1)}
    for key in rng.sample(KEYS[:14], rng.randrange(3)):
        msg[key] = random_json(rng, depth + 1)
    return msg


def structured_file(seed: int) -> bytes:
    """Up to 12 lines of messages-shaped objects built from random parts (plain ``random``, seeded by
    Hypothesis: building them with Hypothesis draws cost ~40 ms per file, this costs well under 1 ms)."""
    rng = random.Random(seed)
    lines = []
    for _ in range(rng.randrange(13)):
        ex = random_json(rng) if rng.random() < 0.2 else {"messages": [random_json(rng, 1) for _ in range(rng.randrange(6))]}
        for key in rng.sample(["tools", "functions", "parallel_tool_calls", "extra"], rng.randrange(3)):
            if isinstance(ex, dict):
                ex[key] = random_json(rng, 1)
        lines.append(json.dumps(ex, ensure_ascii=rng.random() < 0.5).encode("utf-8", "surrogatepass"))
    return rng.choice([b"\n", b"\r\n", b"\n\n"]).join(lines) + rng.choice([b"", b"\n"])


@st.composite
def unicode_file(draw) -> bytes:
    """Examples whose strings hold odd Unicode, the file in a random encoding."""
    rows = []
    for _ in range(draw(st.integers(0, 12))):
        ex = json.loads(json.dumps(draw(st.sampled_from(VALID))))
        m = draw(st.sampled_from(ex["messages"]))
        field = draw(st.sampled_from(["content", "role", "name", "key"]))
        text = draw(ODD_TEXT)
        if field == "key":
            m[text] = "x"
        else:
            m[field] = text
        rows.append(json.dumps(ex, ensure_ascii=draw(st.booleans())))
    sep = draw(st.sampled_from(["\n", "\r\n", "\u2028", "\x85", "\n\n"]))
    how = draw(st.sampled_from(["utf-8", "utf-8", "utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-32", "latin-1",
                                "cp1252"]))
    return _encode(sep.join(rows) + draw(st.sampled_from(["", "\n"])), how)


@st.composite
def nested(draw) -> bytes:
    """Deep nesting of lists and objects, balanced or not, on its own line or inside a valid example."""
    depth = draw(st.integers(1, 5000) | st.sampled_from([990, 1000, 1500, 3000, 100_000]))
    kind = draw(st.sampled_from(["list", "object", "open_only", "mixed"]))
    if kind == "list":
        core = "[" * depth + "]" * depth
    elif kind == "object":
        core = '{"a":' * depth + "1" + "}" * depth
    elif kind == "open_only":
        core = "[" * depth
    else:
        core = '[{"messages":' * depth + "[]" + "}]" * depth
    where = draw(st.sampled_from(["line", "content", "arguments", "tools", "messages"]))
    if where == "line":
        line = core
    elif where == "arguments":
        call = {"id": "c", "type": "function", "function": {"name": "track", "arguments": core}}
        line = json.dumps({"messages": [{"role": "user", "content": "a"},
                                        {"role": "assistant", "tool_calls": [call]}], "tools": _TOOLS})
    else:
        holder = {"messages": [{"role": "user", "content": "__X__"}, {"role": "assistant", "content": "x"}]}
        if where == "tools":
            holder["tools"] = "__X__"
        if where == "messages":
            holder = {"messages": "__X__"}
        line = json.dumps(holder).replace('"__X__"', core)
    lines = [json.dumps(draw(st.sampled_from(VALID))) for _ in range(draw(st.integers(0, 11)))]
    lines.insert(draw(st.integers(0, len(lines))), line)
    return "\n".join(lines).encode()


SOUP = [b"{", b"}", b"[", b"]", b'"messages"', b'"role"', b'"content"', b'"assistant"', b'"user"', b'"tool_calls"',
        b'"weight"', b":", b",", b'"', b"\\", b"\\u", b"\\ud83d", b"\\ude00", b"\\u0000", b"NaN", b"Infinity",
        b"-Infinity", b"1e999", b"-0", b"0.1e-400", b"true", b"null", b"1", b"\n", b"\r\n", b"\r", b" ", b"\t",
        b"\xef\xbb\xbf", b"\x00", b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"//", b"'", b"x" * 50]
TOKEN_SOUP = st.lists(st.sampled_from(SOUP), max_size=60).map(b"".join)

HUGE_CHARS = [" ", "\t", "a", "ab", "é", "1", "%", "%a", "@", "a@", "a.", "-", "\u3000", "\\n", "\\u0000",
              "4111 ", "+1 415 ", "😀", "\\ud800"]


@st.composite
def huge(draw) -> bytes:
    """One or two very long lines (up to 300,000 characters) of a repeated unit, inside a field or alone."""
    unit = draw(st.sampled_from(HUGE_CHARS))
    n = draw(st.integers(1, 300_000 // len(unit)))
    blob = unit * n
    where = draw(st.sampled_from(["content", "content", "raw", "key", "role", "arguments"]))
    if where == "raw":
        return (blob + "\n").encode("utf-8", "surrogatepass")
    ex = json.loads(json.dumps(VALID[1] if where == "arguments" else VALID[0]))
    text = json.loads(f'"{blob}"') if "\\" in blob else blob
    if where == "content":
        ex["messages"][1]["content"] = text
    elif where == "key":
        ex["messages"][1][text] = 1
    elif where == "role":
        ex["messages"][1]["role"] = text
    else:
        ex["messages"][1]["tool_calls"][0]["function"]["arguments"] = text
    return _dump(ex, draw(st.booleans())) + b"\n"


def _gz(name: str) -> bytes:
    return gzip.decompress((CORPUS / name).read_bytes())


# ---------------------------------------------------------------------------------------------
# The fuzz runs (10,000 inputs between them)
# ---------------------------------------------------------------------------------------------
def test_random_bytes():
    fuzz("bytes", st.binary(max_size=3000), b"\xff\xfe", b"\xef\xbb\xbf", b"\r\r\r", b"\x00\n\x00")


def test_json_token_soup():
    fuzz("token_soup", files_of(TOKEN_SOUP), b'{"messages": NaN}', b'{"messages": [1e999]}', b'"\\ud800"')


@pytest.mark.slow  # ~25-40 s on the 2-core CPU: Hypothesis builds and mutates 2,000 files
def test_near_valid_json():
    fuzz("near_valid", files_of(mutated_line(), max_lines=6), _read(CORPUS / "role_not_a_string.jsonl"),
         b'{"messages": [{"role": [], "content": "x"}, {"role": "assistant", "content": "y"}]}')


def test_random_structures():
    fuzz("structures", st.integers(0, 2**64).map(structured_file))


def test_odd_unicode_encodings_and_line_endings():
    fuzz("unicode", unicode_file(), "\ufeff\n".encode(), '{"messages": "\u2028"}\x85'.encode())


def test_deep_nesting():
    fuzz("nesting", nested(), b"[" * 100_000, b'{"a":' * 5000)


@pytest.mark.timeout(300)  # a quadratic regex or tokenizer would hang here, not finish slowly
def test_huge_lines():
    fuzz("huge", huge(), _gz("huge_spaces_1200k.jsonl.gz"), _gz("percent_run_200k.jsonl.gz"))


# ---------------------------------------------------------------------------------------------
# The seed corpus and the command line
# ---------------------------------------------------------------------------------------------
def corpus_files() -> list[Path]:
    return sorted(p for p in CORPUS.iterdir() if p.suffix in (".jsonl", ".gz"))


def _read(p: Path) -> bytes:
    return gzip.decompress(p.read_bytes()) if p.suffix == ".gz" else p.read_bytes()


def _cli_json(cli, path: Path) -> dict:
    code, out, err = cli("validate", str(path), "--json")
    assert code in (0, 1), (code, err)
    doc = json.loads(out)
    assert code == (0 if doc["ok"] else 1)
    for f in doc["errors"] + doc["warnings"]:
        assert f["code"] and (f["line"] is None or isinstance(f["line"], int))
    # the CLI adds the model's fine-tuning availability on --as-of's date (today) to the library's report
    av = doc["stats"].pop("availability")
    assert av["availability_status"] in ("open", "closing", "closed", "retired")
    doc["stats"].get("cost", {}).pop("availability_status", None)
    doc["stats"].get("cost", {}).pop("availability_date", None)
    return doc


def test_corpus_has_the_cases_fuzzing_found():
    names = {p.name for p in corpus_files()}
    assert {"huge_spaces_1200k.jsonl.gz", "percent_run_200k.jsonl.gz", "role_not_a_string.jsonl"} <= names
    assert all(p.stat().st_size < 200_000 for p in corpus_files())  # large inputs are stored gzipped
    readme = (CORPUS / "README.md").read_text()
    assert all(n in readme for n in names), "describe every corpus file in tests/data/fuzz_corpus/README.md"


@pytest.mark.timeout(300)
@pytest.mark.parametrize("path", corpus_files(), ids=lambda p: p.name)
def test_corpus_replays_in_process_and_through_the_cli(path, cli, tmp_path):
    blob = _read(path)
    doc = check(blob)
    target = tmp_path / path.name.removesuffix(".gz")
    target.write_bytes(blob)
    assert _cli_json(cli, target) == doc


def test_cli_json_on_a_generated_sample(cli, tmp_path):
    """A sample of every family through ``ftlab validate --json`` (in-process, as the CLI runs it)."""
    target = tmp_path / "sample.jsonl"
    ran = []
    mix = (st.binary(max_size=500) | files_of(TOKEN_SOUP) | files_of(mutated_line()) | st.integers(0, 2**64).map(structured_file)
           | unicode_file() | nested())

    @settings(FUZZ, max_examples=max(1, int(200 * SCALE)))
    @given(mix)
    def body(blob):
        ran.append(1)
        target.write_bytes(blob)
        assert _cli_json(cli, target) == check(blob)

    body()
    assert len(ran) >= 200 * min(SCALE, 1)


def test_cli_subprocess_exit_codes_and_strict_json(tmp_path):
    """The real ``ftlab validate`` process: exit 0/1 with strict JSON on stdout, 2 and one line for usage errors."""
    nasty = tmp_path / "nasty.jsonl"
    nasty.write_bytes(b"\xef\xbb\xbf" + _read(CORPUS / "odd_unicode.jsonl") + b"\r\n\xff\xfe\n[" * 3 + b"\n")
    good = tmp_path / "good.jsonl"
    good.write_bytes(b"\n".join(json.dumps(VALID[0]).replace("1234", str(i)).encode() for i in range(10)))
    cases = [(nasty, 1), (good, 0), (tmp_path / "missing.jsonl", 2), (tmp_path, 2)]
    for path, want in cases:
        p = subprocess.run([sys.executable, "-m", "ftlab", "validate", str(path), "--json"], capture_output=True,
                           timeout=300, env={**os.environ, "PYTHONIOENCODING": "ascii"})
        assert p.returncode == want, (path, p.returncode, p.stderr[-2000:])
        if want == 2:
            assert p.stdout == b"" and p.stderr.decode().count("\n") == 1, p.stderr
            continue
        doc = json.loads(p.stdout.decode("ascii"), parse_constant=lambda c: pytest.fail(f"{c} in --json output"))
        assert doc["ok"] is (want == 0)
        assert all(re.fullmatch(r"[a-z0-9_]+", f["code"]) for f in doc["errors"] + doc["warnings"])
