"""``ftlab validate --method dpo``: OpenAI's preference format, each error by its line, the CLI contract."""

from __future__ import annotations

import copy
import json

import pytest

from ftlab.preference import preference_pairs, to_openai_dpo
from ftlab.validate_dpo import DPO_CODES, validate_dpo_bytes, validate_dpo_file

GOOD = {"input": {"messages": [{"role": "system", "content": "You are support."},
                               {"role": "user", "content": "Where is order 1234?"}]},
        "preferred_output": [{"role": "assistant", "content": "It ships today. Thank you for your patience."}],
        "non_preferred_output": [{"role": "assistant", "content": "It ships today."}]}
TOOLS = [{"type": "function", "function": {"name": "track", "parameters": {"type": "object", "properties": {}}}}]
CALL = {"id": "c1", "type": "function", "function": {"name": "track", "arguments": '{"order": "1234"}'}}


def _good(i: int) -> dict:
    g = copy.deepcopy(GOOD)
    g["input"]["messages"][1]["content"] = f"Where is order {1000 + i}?"
    return g


def _file(rows, n_valid: int = 10) -> bytes:
    lines = [json.dumps(_good(i)) for i in range(n_valid)]
    lines += [r if isinstance(r, str) else json.dumps(r) for r in rows]
    return ("\n".join(lines) + "\n").encode()


def _bad(**change) -> dict:
    g = copy.deepcopy(GOOD)
    for path, value in change.items():
        node = g
        keys = path.split("__")
        for k in keys[:-1]:
            node = node[int(k)] if k.isdigit() else node[k]
        last = keys[-1]
        if value is DELETE:
            del node[int(last) if last.isdigit() else last]
        else:
            node[int(last) if last.isdigit() else last] = value
    return g


DELETE = object()
ERRORS = [
    ("not json", "{oops", "invalid_json"),
    ("a list", "[1, 2]", "data_type"),
    ("no input", _bad(input=DELETE), "missing_input"),
    ("input a string", _bad(input="hi"), "missing_input"),
    ("no messages", _bad(input__messages=DELETE), "missing_messages_list"),
    ("empty messages", _bad(input__messages=[]), "missing_messages_list"),
    ("unknown role", _bad(input__messages__1__role="customer"), "unrecognized_role"),
    ("no content", _bad(input__messages__1__content=DELETE), "message_missing_key"),
    ("no preferred", _bad(preferred_output=DELETE), "invalid_output"),
    ("preferred an object", _bad(preferred_output={"role": "assistant", "content": "x"}), "invalid_output"),
    ("two preferred", _bad(preferred_output=[{"role": "assistant", "content": "a"}] * 2), "invalid_output"),
    ("empty non-preferred", _bad(non_preferred_output=[]), "invalid_output"),
    ("user output", _bad(non_preferred_output=[{"role": "user", "content": "x"}]), "invalid_output"),
    ("output empty content", _bad(preferred_output__0__content=""), "missing_content"),
    ("bad tool call", _bad(preferred_output=[{"role": "assistant", "tool_calls": [{"type": "function"}]}]),
     "invalid_tool_call"),
    ("bad tools", _bad(input__tools="track"), "invalid_tools"),
]


@pytest.mark.parametrize(("name", "row", "code"), ERRORS, ids=[e[0] for e in ERRORS])
def test_each_error_is_found_on_its_line(name, row, code):
    r = validate_dpo_bytes(_file([row]))
    assert not r.ok
    assert [(f.line, f.code) for f in r.errors] == [(11, code)], r.errors
    assert "\n" not in r.errors[0].message


def test_a_malformed_file_reports_every_error_by_line():
    rows = [GOOD, _bad(input=DELETE), "{", _bad(preferred_output=[]), _bad(non_preferred_output=[{"role": "tool", "content": "x", "tool_call_id": "c1"}])]
    r = validate_dpo_bytes(_file(rows, n_valid=9))
    assert [(f.line, f.code) for f in r.errors] == [(11, "missing_input"), (12, "invalid_json"), (13, "invalid_output"),
                                                   (14, "invalid_output")]
    assert r.n_examples == 14
    where = {f.line: f.message for f in r.errors}
    assert where[13].startswith("'preferred_output'") and "non_preferred_output" in where[14]


def test_warnings_input_not_ending_on_user_and_identical_outputs():
    not_user = _bad(input__messages=GOOD["input"]["messages"] + [{"role": "assistant", "content": "Let me check."}])
    same = _bad(non_preferred_output=GOOD["preferred_output"])
    r = validate_dpo_bytes(_file([not_user, same]))
    assert r.ok
    assert [(f.line, f.code) for f in r.warnings] == [(11, "input_not_ending_on_user"), (12, "identical_outputs")]
    assert set(DPO_CODES) >= {"input_not_ending_on_user", "identical_outputs"}


def test_tools_are_allowed_and_checked():
    with_tools = _bad(input__tools=TOOLS, input__parallel_tool_calls=True,
                      preferred_output=[{"role": "assistant", "tool_calls": [CALL]}])
    r = validate_dpo_bytes(_file([with_tools]))
    assert r.ok and not r.warnings, r.warnings
    unknown = copy.deepcopy(with_tools)
    unknown["preferred_output"][0]["tool_calls"][0]["function"]["name"] = "refund"
    assert validate_dpo_bytes(_file([unknown])).codes("warnings") == ["unknown_tool"]


def test_file_level_checks_and_stats():
    assert validate_dpo_bytes(b"").codes() == ["empty_file"]
    assert validate_dpo_bytes(_file([], n_valid=9)).codes() == ["too_few_examples"]
    r = validate_dpo_bytes(_file([]).decode().encode("utf-16"))
    assert r.codes() == ["invalid_encoding"] and r.errors[0].line is None
    r = validate_dpo_bytes(_file([GOOD]))
    assert r.codes("warnings") == [] or "duplicate_example" not in r.codes("warnings")  # GOOD differs from _good(i)
    r = validate_dpo_bytes(_file([_good(0)]))
    assert [(f.line, f.code) for f in r.warnings] == [(11, "duplicate_example")]
    assert r.stats["method"] == "dpo" and r.stats["billing_tokens"] > 0 and r.stats["n_counted"] == 11


def test_ftlabs_generated_pairs_are_valid(tmp_path):
    path = tmp_path / "prefs.jsonl"
    path.write_text("".join(json.dumps(to_openai_dpo(p)) + "\n" for p in preference_pairs()["train"][:20]))
    r = validate_dpo_file(path)
    assert r.ok and r.n_examples == 20 and not r.warnings, r.errors + r.warnings


def test_cli_method_dpo_exit_codes_and_json(cli, tmp_path):
    good, bad = tmp_path / "good.jsonl", tmp_path / "bad.jsonl"
    good.write_bytes(_file([]))
    bad.write_bytes(_file([_bad(input=DELETE), "{"]))
    code, out, _ = cli("validate", str(good), "--method", "dpo", "--json")
    assert code == 0 and json.loads(out)["ok"] is True
    code, out, _ = cli("validate", str(bad), "--method", "dpo", "--json")
    doc = json.loads(out)
    assert code == 1 and [(e["line"], e["code"]) for e in doc["errors"]] == [(11, "missing_input"), (12, "invalid_json")]
    code, out, _ = cli("validate", str(bad), "--method", "dpo")
    assert code == 1 and "INVALID" in out and "missing_input" in out
    # the SFT validator rejects a preference file: the method matters
    code, out, _ = cli("validate", str(good), "--json")
    assert code == 1 and json.loads(out)["errors"][0]["code"] == "missing_messages_list"
    code, _, err = cli("validate", str(tmp_path / "missing.jsonl"), "--method", "dpo")
    assert code == 2 and err.count("\n") == 1
