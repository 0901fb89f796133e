"""The JSONL validator: the cookbook's checks and figures, tool calling, the CLI, and robustness."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ftlab import data
from ftlab.validate import (
    default_epochs,
    find_personal_data,
    token_limit_for_model,
    validate_bytes,
    validate_file,
)
from tests.helpers import ROOT

PEER = ROOT / "tests" / "data" / "peer" / "openai-cookbook"
TOY = PEER / "toy_chat_fine_tuning.jsonl"
DRONE = PEER / "drone_training_first11.jsonl"
COOKBOOK_CODES = {"data_type", "missing_messages_list", "message_missing_key", "message_unrecognized_key",
                  "unrecognized_role", "missing_content", "example_missing_assistant_message"}


def _ex(user="Where is my order 1234?", reply="It ships today.", **extra):
    msgs = [{"role": "system", "content": "You are support."}, {"role": "user", "content": user},
            {"role": "assistant", "content": reply}]
    return {"messages": msgs, **extra}


def _file(rows, n_valid=10) -> bytes:
    """``rows`` (dicts or raw strings) after ``n_valid`` distinct valid examples."""
    lines = [json.dumps(_ex(user=f"Where is order {1000 + i}?")) for i in range(n_valid)]
    lines += [r if isinstance(r, str) else json.dumps(r) for r in rows]
    return ("\n".join(lines) + "\n").encode()


def _only(report, line):
    return [f.code for f in report.errors if f.line == line]


def test_cookbook_toy_file_reproduces_the_notebooks_figures():
    r = validate_file(TOY, encoding="cl100k_base", max_tokens=4096)
    s = r.stats
    # "No errors found" for the cookbook's own format checks
    assert not COOKBOOK_CODES & set(r.codes())
    # "Num examples missing system message: 1" / "... user message: 1"
    assert (s["n_missing_system"], s["n_missing_user"]) == (1, 1)
    assert [(f.line, f.code) for f in r.warnings] == [(3, "missing_system_message"), (4, "missing_user_message")]
    assert s["messages_per_example"] == {"min": 2, "max": 9, "mean": 3.8, "median": 3.0, "p10": 2.0,
                                         "p90": 6.6000000000000005}
    assert s["tokens_per_example"] == {"min": 26, "max": 8032, "mean": 1648.4, "median": 45.0, "p10": 26.8,
                                       "p90": 4863.6}
    assert s["assistant_tokens_per_example"] == {"min": 4, "max": 8000, "mean": 1610.2, "median": 10.0,
                                                 "p10": 6.0, "p90": 4811.200000000001}
    # "1 examples may be over the 4096 token limit"
    assert s["n_over_token_limit"] == 1
    # "~4306 tokens that will be charged", "20 epochs", "~86120 tokens"
    assert (s["billing_tokens"], s["n_epochs"], s["trained_tokens"]) == (4306, 20, 86120)
    # OpenAI's own rules on top: 5 < 10 examples, and example 5 is over the limit
    assert [(f.line, f.code) for f in r.errors] == [(None, "too_few_examples"), (5, "too_many_tokens")]
    assert not r.ok


def test_drone_function_calling_file_is_valid_with_double_encoding_warnings():
    r = validate_file(DRONE)
    assert r.ok, r.summary()
    assert r.n_examples == 11
    dbl = [f.line for f in r.warnings if f.code == "double_encoded_tool_arguments"]
    assert dbl == [3, 4, 5, 6, 7, 8]
    assert {f.code for f in r.warnings} == {"double_encoded_tool_arguments"}
    # tools definitions count toward the example's tokens
    assert r.stats["tokens_per_example"]["min"] > 500


def test_epoch_heuristic_constants():
    assert default_epochs(5) == 20
    assert default_epochs(1) == 25
    assert default_epochs(25) == 4
    assert default_epochs(34) == 3
    assert default_epochs(50) == 3
    assert default_epochs(8333) == 3
    assert default_epochs(8334) == 2
    assert default_epochs(30000) == 1


def test_token_limits_by_model():
    assert token_limit_for_model("gpt-4.1-mini-2025-04-14") == 65536
    assert token_limit_for_model("ft:gpt-4o-mini-2024-07-18:org::abc") == 65536
    assert token_limit_for_model("gpt-3.5-turbo-0125") == 16385
    assert token_limit_for_model("gpt-3.5-turbo-0613") == 4096
    assert token_limit_for_model("o4-mini") is None


@pytest.mark.parametrize(("row", "code"), [
    ("[1, 2]", "data_type"),
    ({"prompt": "x", "completion": "y"}, "missing_messages_list"),
    ({"messages": []}, "missing_messages_list"),
    ({"messages": [{"content": "hi"}, {"role": "assistant", "content": "x"}]}, "message_missing_key"),
    ({"messages": [{"role": "user"}, {"role": "assistant", "content": "x"}]}, "message_missing_key"),
    ({"messages": [{"role": "user", "content": "a", "mood": "happy"}, {"role": "assistant", "content": "x"}]},
     "message_unrecognized_key"),
    ({"messages": [{"role": "customer", "content": "a"}, {"role": "assistant", "content": "x"}]}, "unrecognized_role"),
    ({"messages": [{"role": "user", "content": ""}, {"role": "assistant", "content": "x"}]}, "missing_content"),
    ({"messages": [{"role": "user", "content": 7}, {"role": "assistant", "content": "x"}]}, "missing_content"),
    ({"messages": [{"role": "user", "content": "a"}]}, "example_missing_assistant_message"),
    ('{"messages": [', "invalid_json"),
    ('{"messages": NaN}', "invalid_json"),
    ({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "x", "weight": 2}]},
     "invalid_weight"),
    ({"messages": [{"role": "user", "content": "a", "weight": 1}, {"role": "assistant", "content": "x"}]},
     "invalid_weight"),
    ({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "tool_calls": "oops"}]},
     "invalid_tool_call"),
    ({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "x"}], "tools": {}},
     "invalid_tools"),
])
def test_each_error_code_with_its_line(row, code):
    r = validate_bytes(_file([row]))
    assert _only(r, 11) == [code], r.summary()
    assert not r.ok
    assert all(f.line == 11 for f in r.errors)


def test_file_level_errors_have_no_line():
    r = validate_bytes(b"")
    assert [(f.line, f.code) for f in r.errors] == [(None, "empty_file")]
    r = validate_bytes(b"\n  \n")
    assert r.codes() == ["empty_file"]
    r = validate_bytes(_file([], n_valid=9))
    assert [(f.line, f.code) for f in r.errors] == [(None, "too_few_examples")]


def test_invalid_encoding_per_line_and_utf16():
    raw = _file([]) + "{\"messages\": [{\"role\": \"user\", \"content\": \"caf\u00e9\"}]}\n".encode("latin-1")
    r = validate_bytes(raw)
    assert [(f.line, f.code) for f in r.errors] == [(11, "invalid_encoding")]
    r = validate_bytes(_file([]).decode().encode("utf-16"))
    assert r.codes() == ["invalid_encoding"] and r.errors[0].line is None
    r = validate_bytes(_file(['{"messages": [{"role": "user", "content": "\\ud800"}, {"role": "assistant", "content": "x"}]}']))
    assert _only(r, 11) == ["invalid_encoding"]


def test_too_many_tokens_uses_the_models_limit_or_the_override():
    long = _ex(reply="word " * 300)
    assert validate_bytes(_file([long])).ok
    r = validate_bytes(_file([long]), max_tokens=200)
    assert _only(r, 11) == ["too_many_tokens"]
    assert r.stats["billing_tokens"] == sum(min(200, e["tokens"]) for e in r.stats["examples"])


def test_tool_calling_is_valid_and_argument_warnings():
    tools = [{"type": "function", "function": {"name": "track", "parameters": {"type": "object", "properties": {}}}}]
    call = {"id": "c1", "type": "function", "function": {"name": "track", "arguments": '{"order": "1234"}'}}
    good = {"messages": [{"role": "user", "content": "track 1234"}, {"role": "assistant", "tool_calls": [call]},
                         {"role": "tool", "tool_call_id": "c1", "content": "shipped"},
                         {"role": "assistant", "content": "It shipped."}], "tools": tools}
    r = validate_bytes(_file([good]))
    assert r.ok and not [f for f in r.warnings if f.line == 11 and f.code != "missing_system_message"], r.summary()

    def with_args(args, name="track"):
        c = {**call, "function": {"name": name, "arguments": args}}
        return {**good, "messages": [good["messages"][0], {"role": "assistant", "content": None, "tool_calls": [c]}]}

    cases = {json.dumps(json.dumps({"order": "1"})): "double_encoded_tool_arguments",
             "[1, 2]": "tool_arguments_not_object", "{nope": "tool_arguments_not_object"}
    for args, code in cases.items():
        r = validate_bytes(_file([with_args(args)]))
        assert r.ok, r.summary()
        assert code in [f.code for f in r.warnings if f.line == 11]
    r = validate_bytes(_file([with_args("{}", name="refund")]))
    assert "unknown_tool" in [f.code for f in r.warnings]
    legacy = {"messages": [{"role": "user", "content": "hi"},
                           {"role": "assistant", "function_call": {"name": "f", "arguments": "{}"}},
                           {"role": "function", "name": "f", "content": "ok"}, {"role": "assistant", "content": "done"}],
              "functions": [{"name": "f", "parameters": {"type": "object"}}]}
    assert validate_bytes(_file([legacy])).ok


def test_warnings_duplicates_missing_roles_pii():
    dup = _ex(user="Where is order 1000?")
    nosys = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}
    pii = _ex(user="Mail me at jane.doe@example.com or call +1 415 555 0134, card 4111 1111 1111 1111.")
    r = validate_bytes(_file([dup, nosys, pii]))
    assert r.ok
    got = {(f.line, f.code) for f in r.warnings}
    assert {(11, "duplicate_example"), (12, "missing_system_message"), (13, "pii_email"),
            (13, "pii_phone_number"), (13, "pii_card_number")} <= got
    assert all(f.code.startswith("pii") for f in r.warnings if f.line == 13)
    assert "jane.doe" not in json.dumps(r.to_dict())  # the warning masks what it found
    assert next(f for f in r.warnings if f.line == 11).message == "duplicate of line 1"


def test_pii_detector_spares_order_numbers_and_skus():
    assert find_personal_data("intent: refund | order: 4821 | SKU HP-1234, price 45, 2024-05-01") == []
    assert find_personal_data("card 4111111111111112") == []  # fails the Luhn check
    assert [c for c, _ in find_personal_data("card 5500-0000-0000-0004")] == ["pii_card_number"]
    assert [c for c, _ in find_personal_data("(415) 555-0134")] == ["pii_phone_number"]


def test_toy_world_files(tmp_path):
    with_tmp = tmp_path
    files = data.write_toy_files(with_tmp)
    assert validate_file(files["upload"]).ok
    r = validate_file(files["malformed"])
    assert [(f.line, f.code) for f in r.errors] == [(3, "invalid_json"), (5, "unrecognized_role"),
                                                     (7, "example_missing_assistant_message"),
                                                     (9, "message_missing_key")]
    codes = {(f.line, f.code) for f in r.warnings}
    assert {(11, "pii_email"), (11, "pii_phone_number"), (12, "duplicate_example")} <= codes
    # extra scoring fields would be rejected by OpenAI: a warning names them
    rows = data.support_splits()["train"][:10]
    data.write_jsonl(rows, with_tmp / "raw.jsonl", openai_only=False)
    r = validate_file(with_tmp / "raw.jsonl")
    assert "unrecognized_example_key" in r.codes("warnings")


def test_o200k_counts_differ_from_cl100k_and_are_exact():
    from ftlab.tokens import count_chat_tokens

    r = validate_bytes(_file([]), model="gpt-4.1-mini")
    first = json.loads(_file([]).decode().splitlines()[0])
    assert r.stats["examples"][0]["tokens"] == count_chat_tokens(first["messages"], "gpt-4.1-mini")
    assert r.stats["encoding"] == "o200k_base"
    assert r.stats["billing_tokens"] == sum(e["tokens"] for e in r.stats["examples"])
    assert r.stats["trained_tokens"] == r.stats["billing_tokens"] * r.stats["n_epochs"]


def test_cli_exit_codes_and_json_shape(cli, tmp_path):
    code, out, _ = cli("validate", str(DRONE), "--json")
    assert code == 0
    doc = json.loads(out)
    assert set(doc) == {"ok", "n_examples", "errors", "warnings", "stats"}
    assert doc["ok"] is True and doc["n_examples"] == 11
    assert set(doc["warnings"][0]) == {"line", "code", "message"}
    code, out, _ = cli("validate", str(TOY), "--encoding", "cl100k_base", "--max-tokens", "4096", "--json")
    doc = json.loads(out)
    assert code == 1 and doc["stats"]["billing_tokens"] == 4306 and doc["stats"]["trained_tokens"] == 86120
    assert {"line": None, "code": "too_few_examples", "message": "5 examples: OpenAI requires at least 10"} in doc["errors"]
    code, out, _ = cli("validate", str(TOY), "--encoding", "cl100k_base", "--max-tokens", "4096")
    assert code == 1 and "4306" in out and "too_many_tokens" in out
    assert cli("validate", str(tmp_path / "missing.jsonl"))[0] == 2
    code, _, err = cli("validate", str(TOY), "--model", "llama-3")
    assert code == 2 and "unknown OpenAI model" in err and err.count("\n") == 1
    assert cli("validate", str(TOY), "--max-tokens", "zero")[0] == 2
    assert cli("validate", str(tmp_path))[0] == 2


def test_random_bytes_never_raise():
    rng = random.Random(0)
    for _ in range(200):
        blob = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 400)))
        r = validate_bytes(blob)
        assert all(f.line is None or 1 <= f.line <= blob.count(b"\n") + 1 for f in r.errors + r.warnings)
        json.dumps(r.to_dict())


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(
        st.sampled_from(["messages", "role", "content", "weight", "tool_calls", "function", "arguments", "name",
                         "tools", "type", "id", "tool_call_id", "x"]), kids, max_size=5),
    max_leaves=25)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_json | st.binary(max_size=60).map(lambda b: b.decode("latin-1")), max_size=12))
def test_fuzzed_structures_never_raise(lines):
    blob = "\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines).encode("utf-8", "surrogatepass")
    r = validate_bytes(blob)
    assert r.ok == (not r.errors)
    json.dumps(r.to_dict())


def test_deep_nesting_never_raises():
    r = validate_bytes(b"[" * 100000 + b"]" * 100000 + b"\n" + b'{"messages": ' + b"[" * 5000 + b"]" * 5000 + b"}")
    assert [(f.line, f.code) for f in r.errors if f.line] == [(1, "invalid_json"), (2, "invalid_json")]
    assert "nested too deeply" in r.errors[-1].message
    deep = b'{"messages": [{"role": "user", "content": ' + b"[" * 900 + b"]" * 900 + b'}, {"role": "assistant", "content": "x"}]}'
    r = validate_bytes(deep)
    assert [(f.line, f.code) for f in r.errors if f.line] == [(1, "missing_content")]


def test_cost_comes_from_the_price_catalog(cli):
    from ftlab.cost import load_catalog

    r = validate_file(DRONE, model="gpt-4.1")
    price = load_catalog().entry("gpt-4.1")["training_usd_per_1m"]
    cost = r.stats["cost"]
    assert cost["usd"] == round(r.stats["trained_tokens"] * price / 1e6, 6) and cost["usd"] > 0
    assert cost["source"] and cost["as_of"] and cost["confidence"] == "seed"
    assert "cost" not in validate_file(DRONE, model="o4-mini").stats  # billed per hour, not per token
    code, _, err = cli("validate", str(DRONE), "--model", "gpt-5.4")
    assert code == 2 and "cannot be fine-tuned" in err and "gpt-4.1-mini" in err
    code, out, _ = cli("validate", str(DRONE), "--epochs", "2")
    assert code == 0 and f"× 2 epochs (given) = {2 * r.stats['billing_tokens']}" in out
