"""ftlab.cloud: format round trips, line-numbered errors, platform rules, cost, and submission (boto3 + moto)."""

from __future__ import annotations

import copy
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from ftlab import cloud
from ftlab.data import read_jsonl, support_splits, write_jsonl, write_toy_files
from ftlab.errors import FtlabError

DRONE = Path(__file__).parent / "data" / "peer" / "openai-cookbook" / "drone_training_first11.jsonl"


def _openai(rows):
    return [{"messages": r["messages"]} for r in rows]


TOY = _openai(support_splits()["train"][:60])  # OpenAI records, without the toy world's scoring fields


@pytest.fixture(scope="module")
def toy_files(tmp_path_factory):
    return write_toy_files(tmp_path_factory.mktemp("toy"))


# --------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("platform", cloud.PLATFORMS)
def test_round_trip_gives_the_same_conversations(platform, toy_files, tmp_path):
    out = tmp_path / f"train.{platform}.jsonl"
    conv = cloud.convert_file(toy_files["train"], platform, out)
    assert conv.ok, conv.errors[:3]
    assert conv.n_examples == 1020 and out.is_file()
    assert cloud.validate_for_platform(out, platform).ok
    assert cloud.read_back(out, platform) == read_jsonl(toy_files["train"])  # exact, not normalized


def test_bedrock_prompt_completion_round_trip(tmp_path):
    single = [{"messages": r["messages"][1:]} for r in TOY]  # no system message: the format has no place for it
    res = cloud.round_trip(single, "bedrock", folder=tmp_path, bedrock_format="prompt-completion")
    assert res == {"platform": "bedrock", "equal": True, "n": 60, "first_difference": None}
    line = (tmp_path / "roundtrip.bedrock.jsonl").read_text().splitlines()[0]
    assert set(json.loads(line)) == {"prompt", "completion"}


def test_bedrock_record_shape():
    rec = cloud.to_bedrock(TOY[0])
    assert rec["schemaVersion"] == "bedrock-conversation-2024"
    assert rec["system"] == [{"text": TOY[0]["messages"][0]["content"]}]
    assert [m["role"] for m in rec["messages"]] == ["user", "assistant"]
    assert rec["messages"][1]["content"] == [{"text": TOY[0]["messages"][2]["content"]}]


def test_vertex_record_shape():
    rec = cloud.to_vertex(TOY[0])
    assert rec["systemInstruction"]["parts"] == [{"text": TOY[0]["messages"][0]["content"]}]
    assert [c["role"] for c in rec["contents"]] == ["user", "model"]
    assert rec["contents"][1]["parts"] == [{"text": TOY[0]["messages"][2]["content"]}]


def test_multiturn_and_text_parts_survive(tmp_path):
    ex = {"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "Q1"},
                       {"role": "assistant", "content": "A1"},
                       {"role": "user", "content": [{"type": "text", "text": "Q2a"}, {"type": "text", "text": "Q2b"}]},
                       {"role": "assistant", "content": "A2"}]}
    for platform in ("bedrock", "vertex"):
        res = cloud.round_trip([ex], platform, folder=tmp_path)
        assert res["equal"], (platform, res)


@pytest.fixture(scope="module")
def drone():
    assert DRONE.is_file(), f"{DRONE} is missing: it is committed with the tests (see tests/data/peer/README.md)"
    return read_jsonl(DRONE)


def test_vertex_tool_calls_convert_and_come_back(drone, tmp_path):
    rows = [{k: v for k, v in r.items() if k != "parallel_tool_calls"} for r in drone]
    good = [r for i, r in enumerate(rows, start=1) if i not in range(3, 9)]
    conv = cloud.convert(good, "vertex")
    assert conv.ok, conv.errors
    call = conv.records[0]["contents"][1]["parts"][0]["functionCall"]
    assert call == {"name": "takeoff_drone", "args": {"altitude": 100}}
    assert conv.records[0]["tools"][0]["functionDeclarations"][0]["parameters"]["type"] == "OBJECT"
    assert any("tool_call ids" in w for w in conv.warnings)  # ids are not kept, and it says so
    assert not cloud.round_trip(good, "vertex", folder=tmp_path)["equal"]  # the ids differ ...
    assert cloud.round_trip(good, "vertex", folder=tmp_path, normalize=True)["equal"]  # ... nothing else


def test_tool_results_pair_with_their_calls(tmp_path):
    ex = {"messages": [
        {"role": "user", "content": "Weather in Oslo and Rome?"},
        {"role": "assistant", "tool_calls": [
            {"id": "a", "type": "function", "function": {"name": "weather", "arguments": "{\"city\": \"Oslo\"}"}},
            {"id": "b", "type": "function", "function": {"name": "time", "arguments": "{\"city\": \"Rome\"}"}}]},
        {"role": "tool", "tool_call_id": "a", "content": "-3 C"},
        {"role": "tool", "tool_call_id": "b", "content": "14:00"},
        {"role": "assistant", "content": "Oslo -3 C; Rome 14:00."}],
        "tools": [{"type": "function", "function": {"name": n, "parameters": {"type": "object", "properties": {
            "city": {"type": "string"}}}}} for n in ("weather", "time")]}
    rec = cloud.to_vertex(ex)
    assert [c["role"] for c in rec["contents"]] == ["user", "model", "user", "model"]
    assert [p["functionResponse"]["name"] for p in rec["contents"][2]["parts"]] == ["weather", "time"]
    assert cloud.round_trip([ex], "vertex", folder=tmp_path, normalize=True)["equal"]
    assert cloud.round_trip([ex], "together", folder=tmp_path)["equal"]
    assert cloud.round_trip([ex] * 10, "azure", folder=tmp_path)["equal"]  # Azure needs 10 examples


# ------------------------------------------------------------------- line-numbered errors
def test_malformed_file_errors_name_their_lines(toy_files):
    conv = cloud.convert(toy_files["malformed"], "vertex")
    assert not conv.ok and conv.n_input == 12 and conv.n_examples == 8
    assert [p.line for p in conv.problems] == [3, 5, 7, 9]
    assert [p.code for p in conv.problems] == ["json", "chat", "chat", "chat"]
    assert "invalid JSON" in conv.errors[0] and conv.errors == [str(p) for p in conv.problems]
    assert "unknown role 'customer'" in conv.errors[1]
    assert "no assistant message" in conv.errors[2]
    assert conv.errors[3].startswith("line 9, message 2: user message without content")


def test_nothing_is_written_when_an_example_cannot_convert(toy_files, tmp_path):
    out = tmp_path / "x.jsonl"
    conv = cloud.convert_file(toy_files["malformed"], "together", out)
    assert not conv.ok and not out.exists()
    with pytest.raises(FtlabError, match="nothing written"):
        conv.write(out)


def test_bedrock_cannot_hold_tool_calls(drone):
    rows = [{"messages": r["messages"]} for r in drone]  # no tools field: the messages themselves fail
    conv = cloud.convert(rows, "bedrock")
    assert conv.n_examples == 0 and len(conv.errors) == 11
    assert conv.errors[0].startswith("line 1, message 3: tool calls")
    with_tools = cloud.convert(drone, "bedrock")
    assert "line 1: field 'parallel_tool_calls'" in with_tools.errors[0]


def test_double_encoded_arguments_are_errors_for_gemini(drone):
    rows = [{k: v for k, v in r.items() if k != "parallel_tool_calls"} for r in drone]
    conv = cloud.convert(rows, "vertex")
    assert [(p.line, p.code) for p in conv.problems] == [(n, "cannot-hold") for n in range(3, 9)]
    assert all("decode to a str, not an object" in e for e in conv.errors)


def test_drone_file_is_fine_for_together_without_the_setting_and_for_azure(drone):
    assert cloud.convert(drone, "azure").ok
    assert "parallel_tool_calls" in cloud.convert(drone, "together").errors[0]
    rows = [{k: v for k, v in r.items() if k != "parallel_tool_calls"} for r in drone]
    assert cloud.convert(rows, "together").ok


def test_weights_only_where_the_format_has_them():
    ex = copy.deepcopy(TOY[0])
    ex["messages"][2]["weight"] = 0
    for platform in ("bedrock", "vertex"):
        err = cloud.convert([ex], platform).errors
        assert err and err[0].startswith("line 1, message 3: per-message 'weight'"), (platform, err)
    assert cloud.convert([ex], "together").records[0]["messages"][2]["weight"] == 0
    assert cloud.convert([ex], "azure").records[0]["messages"][2]["weight"] == 0
    ex["messages"][2]["weight"] = 2
    assert "weight must be the integer 0 or 1" in cloud.convert([ex], "together").errors[0]


def test_system_in_the_middle_and_prompt_completion_limits():
    ex = copy.deepcopy(TOY[0])
    ex["messages"].insert(2, {"role": "system", "content": "late"})
    assert "message 3: a system message after the conversation started" in cloud.convert([ex], "bedrock").errors[0]
    pc = cloud.convert([TOY[0]], "bedrock", bedrock_format="prompt-completion")
    assert pc.errors[0].startswith("line 1, message 1: a system message")
    long = {"messages": [{"role": "user", "content": "x" * 25_000}, {"role": "assistant", "content": "y"}]}
    assert "24576 characters" in cloud.convert([long], "bedrock", bedrock_format="prompt-completion").errors[0]


# ------------------------------------------------------------------------ platform rules
def _write_lines(path: Path, records, bom=False):
    path.write_text(("\ufeff" if bom else "") + "\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
    return path


def test_validators_catch_hand_made_mistakes(tmp_path):
    good = cloud.to_bedrock(TOY[0])
    bad = copy.deepcopy(good)
    bad["messages"].reverse()
    res = cloud.validate_for_platform(_write_lines(tmp_path / "b.jsonl", [good, good, bad]), "bedrock")
    assert res.errors[0] == "line 3: the first turn must be 'user', got 'assistant'"
    assert res.problems[0] == cloud.Problem(3, "rule", res.errors[0])
    reserved = copy.deepcopy(good)
    reserved["messages"][0]["content"][0]["text"] = "User: hello"
    assert "reserved keyword" in cloud.validate_for_platform(_write_lines(tmp_path / "r.jsonl", [reserved]), "bedrock").errors[0]

    v = cloud.to_vertex(TOY[0])
    twice = copy.deepcopy(v)
    twice["contents"].insert(1, {"role": "user", "parts": [{"text": "again"}]})
    errs = cloud.validate_for_platform(_write_lines(tmp_path / "v.jsonl", [v, twice]), "vertex").errors
    assert errs == ["line 2, turn 2: two 'user' turns in a row; user and model must alternate"]

    extra = dict(TOY[0], metadata={"k": 1})
    errs = cloud.validate_for_platform(_write_lines(tmp_path / "t.jsonl", [{"messages": TOY[0]["messages"]}, extra]), "together").errors
    assert errs == ["line 2: extra column 'metadata'; a conversational line holds messages (and tools) only"]


def test_azure_wants_a_bom_and_ten_examples(tmp_path):
    rows = _openai(TOY[:12])
    no_bom = cloud.validate_for_platform(_write_lines(tmp_path / "a.jsonl", rows), "azure")
    assert any("byte-order mark" in e for e in no_bom.errors)
    assert cloud.validate_for_platform(_write_lines(tmp_path / "b.jsonl", rows, bom=True), "azure").ok
    few = cloud.convert(rows[:5], "azure")
    assert "Azure OpenAI fine-tuning needs at least 10" in few.errors[0]
    assert (few.problems[0].line, few.problems[0].code) == (None, "file")  # the file as a whole: first
    out = cloud.convert(rows, "azure").write(tmp_path / "c.jsonl")
    assert out.read_bytes().startswith(b"\xef\xbb\xbf")
    assert "byte-order mark" in cloud.validate_for_platform(out, "together").errors[0]  # and Together refuses one


def test_every_cloud_module_is_small_and_declares_its_public_names():
    import importlib
    import pkgutil

    for info in pkgutil.iter_modules(cloud.__path__):
        mod = importlib.import_module(f"ftlab.cloud.{info.name}")
        assert len(Path(mod.__file__).read_text().splitlines()) <= 600, mod.__name__
        assert mod.__all__ and all(hasattr(mod, n) for n in mod.__all__), mod.__name__
    assert all(hasattr(cloud, n) for n in cloud.__all__)
    assert {p.code for p in cloud.convert([{"messages": []}, {"x": 1}], "vertex").problems} <= set(cloud.PROBLEM_CODES)


def test_unknown_platform_is_a_one_line_error():
    with pytest.raises(FtlabError, match="unknown platform 'sagemaker'; use one of: bedrock, vertex, together, azure"):
        cloud.convert(TOY, "sagemaker")


# --------------------------------------------------------------------------------- CLI
def test_cli_convert_json(cli, toy_files, tmp_path):
    out = tmp_path / "t.vertex.jsonl"
    code, stdout, _ = cli("convert", str(toy_files["upload"]), "--to", "vertex", "--out", str(out), "--json")
    report = json.loads(stdout)
    assert code == 0 and report["ok"] and report["n_examples"] == 50 and report["errors"] == []
    assert report["warnings"] == ["50 examples; Vertex recommends starting with 100"]
    assert out.is_file()


def test_cli_convert_reports_line_numbers_and_exit_1(cli, toy_files, tmp_path):
    code, stdout, _ = cli("convert", str(toy_files["malformed"]), "--to", "bedrock", "--json")
    report = json.loads(stdout)
    assert code == 1 and not report["ok"] and report["n_examples"] == 8
    assert [p["line"] for p in report["problems"]] == [3, 5, 7, 9]
    assert [p["message"] for p in report["problems"]] == report["errors"]
    code, stdout, _ = cli("convert", str(toy_files["malformed"]), "--to", "bedrock")
    assert code == 1 and "  line 3: invalid JSON" in stdout and "nothing written" in stdout


def test_cli_convert_default_out_and_usage_errors(cli, toy_files, tmp_path):
    src = write_jsonl(TOY[:20], tmp_path / "mine.jsonl")
    code, stdout, _ = cli("convert", str(src), "--to", "together")
    assert code == 0 and (tmp_path / "mine.together.jsonl").is_file() and "converted 20 examples" in stdout
    code, _, err = cli("convert", str(tmp_path / "missing.jsonl"), "--to", "azure")
    assert code == 2 and "no such file" in err
    code, _, _ = cli("convert", str(src), "--to", "sagemaker")
    assert code == 2


# -------------------------------------------------------------------------------- cost
def test_cost_table_reproduces_the_seed_figures():
    rows = cloud.cost_table(1_500_000, epochs=3, training_hours=2)  # article 001: 5,000 x 300 tokens, 3 epochs
    by_entry = {r["entry"]: r for r in rows}
    assert by_entry["together-lora-8b"]["cost_usd"] == pytest.approx(20.25)
    assert by_entry["gpt-4.1-mini"]["cost_usd"] == pytest.approx(3.60)
    assert by_entry["gpt-4.1"]["cost_usd"] == pytest.approx(13.50)
    self_row = rows[-1]
    assert self_row["platform"] == "self-managed" and self_row["entry"] == "a100-40gb-spot"
    assert self_row["cost_usd"] == pytest.approx(3.00)
    assert cloud.caveat_range(rows) == {"self_managed_usd": 3.0, "managed_low_usd": 6.0, "managed_high_usd": 9.0}
    assert {r["platform"] for r in rows} >= {"bedrock", "vertex", "azure", "together", "self-managed"}
    hourly = [r for r in rows if r["pricing"] == "per_training_hour"]
    assert {r["platform"] for r in hourly} == {"vertex", "azure"} and all(r["billed"] == "2.00 h" for r in hourly)
    assert all(r["source"] and r["as_of"] and r["confidence"] in ("seed", "provider", "unconfirmed") for r in rows)
    assert by_entry["together-lora-8b"]["vs_self_managed"] == 6.75  # the articles' own numbers break their 2-3x rule


def test_cost_table_is_a_view_of_ftlab_cost():
    from ftlab import cost

    tokens = 1_234_567
    rows = cloud.cost_table(tokens, epochs=2)  # no hours: estimated from the throughput table, as ftlab cost does
    for r in rows:
        mine = cost.cost_for(r["entry"], 2 * tokens, digits=4)
        assert (r["cost_usd"], r["rate"], r["confidence"], r["pricing"]) == \
               (mine.training_cost_usd, mine.rate, mine.confidence, mine.pricing)
    managed = {m["id"] for m in cost.load_catalog().models
               if m["fine_tunable"] and m["provider"] in ("together", "vertex", "bedrock", "foundry")}
    assert managed <= {r["entry"] for r in rows}
    unknown = [r for r in rows if r["cost_usd"] is None]
    # Bedrock's other models and the Azure OpenAI entries have no rate ftlab could source: unknown, not zero
    azure_openai = {m for m in managed if m.startswith("azure-openai-")}
    assert {r["entry"] for r in unknown} == {"bedrock-open-models"} | azure_openai and len(azure_openai) == 5
    assert all(r["vs_self_managed"] is None for r in unknown)
    assert "| — |" in cloud.format_table(unknown, ["entry", "cost_usd"])


def test_together_bills_validation_passes():
    base = {r["entry"]: r["cost_usd"] for r in cloud.cost_table(1_000_000, epochs=1)}
    more = {r["entry"]: r["cost_usd"] for r in cloud.cost_table(1_000_000, epochs=1, validation_tokens=100_000, n_evals=5)}
    assert more["together-lora-8b"] == pytest.approx(base["together-lora-8b"] * 1.5)
    assert more["bedrock-nova-micro"] == base["bedrock-nova-micro"]


def test_cost_table_bad_input():
    with pytest.raises(FtlabError, match="training_hours > 0"):
        cloud.cost_table(1_000, training_hours=0)
    with pytest.raises(FtlabError, match=r"gpt-5\.4 cannot be fine-tuned"):
        cloud.cost_table(1_000, openai_models=["gpt-5.4"])
    with pytest.raises(FtlabError, match=r"self_managed_gpu 'gpt-4\.1' is not a GPU id"):
        cloud.cost_table(1_000, self_managed_gpu="gpt-4.1")


def test_training_tokens_counts_the_dataset():
    n = cloud.count_dataset_tokens(TOY[:10])
    assert 200 < n < 1000


# ------------------------------------------------------------- Bedrock through boto3 + moto
@pytest.fixture
def aws(monkeypatch):
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with cloud.mock_aws():
        yield


def test_mock_aws_context_is_offline_and_forgets(monkeypatch):
    """``cloud.mock_aws()`` (notebook 09's ``with`` block): boto3 calls inside it reach moto, what they create is
    gone after it, and ``enabled=False`` mocks nothing."""
    import boto3

    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")

    def buckets() -> list[str]:
        return [b["Name"] for b in boto3.client("s3", region_name="us-east-1").list_buckets()["Buckets"]]

    with cloud.mock_aws() as mocked:
        assert mocked is True
        assert cloud.create_bedrock_prerequisites(bucket="ftlab-ctx-test").startswith("arn:aws:iam::")
        assert buckets() == ["ftlab-ctx-test"]
    with cloud.mock_aws():
        assert buckets() == []  # a fresh, empty AWS each time
    with cloud.mock_aws(enabled=False) as mocked:
        assert mocked is False


@pytest.fixture
def bedrock_file(tmp_path):
    conv = cloud.convert(_openai(TOY[:20]), "bedrock")
    return conv.write(tmp_path / "train.bedrock.jsonl")


def test_bedrock_lifecycle_against_moto(aws, bedrock_file):
    import boto3
    from botocore.exceptions import ClientError

    role = cloud.create_bedrock_prerequisites(bucket="ftlab-test-bucket", region="us-east-1")
    assert role == cloud.create_bedrock_prerequisites(bucket="ftlab-test-bucket", region="us-east-1")  # idempotent
    lines: list[str] = []
    plan = cloud.submit_bedrock_job(bedrock_file, bucket="ftlab-test-bucket", role_arn=role, job_name="ftlab-t-1",
                                    hyperparameters={"epochCount": 2, "learningRate": 1e-5}, dry_run=False,
                                    echo=lines.append)
    assert plan["job_arn"].endswith(":model-customization-job/ftlab-t-1")
    s3 = boto3.client("s3", region_name="us-east-1")
    body = s3.get_object(Bucket="ftlab-test-bucket", Key="ftlab/ftlab-t-1/train.jsonl")["Body"].read()
    assert body == bedrock_file.read_bytes()
    job = cloud.bedrock_job_status("ftlab-t-1")
    assert job["hyperParameters"] == {"epochCount": "2", "learningRate": "1e-05"}
    assert job["trainingDataConfig"]["s3Uri"] == "s3://ftlab-test-bucket/ftlab/ftlab-t-1/train.jsonl"
    waited = cloud.wait_for_bedrock_job("ftlab-t-1", interval=0, max_polls=3, echo=lines.append)
    assert waited == {"status": "InProgress", "finished": False, "polls": ["InProgress"] * 3, "job": waited["job"]}
    assert cloud.stop_bedrock_job("ftlab-t-1") == "Stopped"
    final = cloud.wait_for_bedrock_job("ftlab-t-1", interval=0, max_polls=5, echo=lines.append)
    assert final["finished"] and final["polls"] == ["Stopped"]
    # The documented moto gap: the ARN is not found there (AWS accepts it), so ftlab polls by name.
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        boto3.client("bedrock", region_name="us-east-1").get_model_customization_job(jobIdentifier=plan["job_arn"])


def test_bedrock_dry_run_touches_nothing(aws, bedrock_file):
    import boto3

    role = cloud.create_bedrock_prerequisites(bucket="ftlab-test-bucket")
    lines: list[str] = []
    plan = cloud.submit_bedrock_job(bedrock_file, bucket="ftlab-test-bucket", role_arn=role, job_name="dry-1",
                                    echo=lines.append)
    assert plan["dry_run"] and plan["job_arn"] is None
    assert plan["request"]["trainingDataConfig"] == {"s3Uri": "s3://ftlab-test-bucket/ftlab/dry-1/train.jsonl"}
    assert "nothing uploaded" in lines[0] and any("create_model_customization_job" in x for x in lines)
    assert boto3.client("bedrock", region_name="us-east-1").list_model_customization_jobs()["modelCustomizationJobSummaries"] == []
    assert "Contents" not in boto3.client("s3", region_name="us-east-1").list_objects_v2(Bucket="ftlab-test-bucket")


def test_bedrock_prompt_completion_file_can_be_submitted(aws, tmp_path):
    single = [{"messages": r["messages"][1:]} for r in TOY[:20]]
    f = cloud.convert(single, "bedrock", bedrock_format="prompt-completion").write(tmp_path / "pc.jsonl")
    role = cloud.create_bedrock_prerequisites(bucket="ftlab-test-bucket")
    with pytest.raises(FtlabError, match="does not pass bedrock's rules"):
        cloud.submit_bedrock_job(f, bucket="ftlab-test-bucket", role_arn=role, job_name="pc-1", echo=lambda s: None)
    plan = cloud.submit_bedrock_job(f, bucket="ftlab-test-bucket", role_arn=role, job_name="pc-1", dry_run=False,
                                    base_model="amazon.titan-text-lite-v1", bedrock_format="prompt-completion",
                                    echo=lambda s: None)
    assert cloud.bedrock_job_status("pc-1")["baseModelArn"].endswith("foundation-model/amazon.titan-text-lite-v1")
    assert plan["job_arn"].endswith("/pc-1")


def test_bedrock_refuses_wrong_format_and_missing_credentials(tmp_path, monkeypatch, bedrock_file):
    plain = write_jsonl(TOY[:20], tmp_path / "openai.jsonl")
    with pytest.raises(FtlabError, match="does not pass bedrock's rules"):
        cloud.submit_bedrock_job(plain, bucket="b", role_arn="arn:aws:iam::1:role/r", job_name="x", echo=lambda s: None)
    with pytest.raises(FtlabError, match="Bedrock job name"):
        cloud.submit_bedrock_job(bedrock_file, bucket="b", role_arn="r", job_name="bad name!", echo=lambda s: None)
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(FtlabError, match="no AWS credentials"):
        cloud.submit_bedrock_job(bedrock_file, bucket="b", role_arn="r", job_name="x", dry_run=False, echo=lambda s: None)


# ----------------------------------------------------------------- Vertex and Together
@pytest.fixture
def vertex_file(tmp_path):
    return cloud.convert(_openai(TOY[:20]), "vertex").write(tmp_path / "train.vertex.jsonl")


def test_vertex_dry_run_prints_the_exact_request(vertex_file):
    lines: list[str] = []
    plan = cloud.submit_vertex_job(vertex_file, project="my-proj", bucket="my-bucket", epochs=2, echo=lines.append)
    create = plan["create"]
    assert create["url"] == "https://us-central1-aiplatform.googleapis.com/v1/projects/my-proj/locations/us-central1/tuningJobs"
    assert create["body"] == {"baseModel": "gemini-2.5-flash", "tunedModelDisplayName": "ftlab-support",
                              "supervisedTuningSpec": {
                                  "trainingDatasetUri": "gs://my-bucket/ftlab/ftlab-support/train.jsonl",
                                  "hyperParameters": {"epochCount": "2", "learningRateMultiplier": 1.0,
                                                      "adapterSize": "ADAPTER_SIZE_FOUR"}}}
    assert plan["uploads"][0]["url"].endswith("/b/my-bucket/o?uploadType=media&name=ftlab%2Fftlab-support%2Ftrain.jsonl")
    text = "\n".join(lines)
    assert "nothing uploaded" in text and "client.tunings.tune(" in text and '"baseModel": "gemini-2.5-flash"' in text


class _Recorder(BaseHTTPRequestHandler):
    seen: ClassVar[list] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).seen.append((self.path, self.headers["Authorization"], body))
        reply = {"name": "projects/p/locations/us-central1/tuningJobs/42", "state": "JOB_STATE_PENDING"} \
            if self.path.endswith("/tuningJobs") else {"name": "ftlab/ftlab-support/train.jsonl"}
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def test_vertex_real_submission_path_over_http(vertex_file):
    """The real (non-dry-run) code path, sent to a loopback HTTP server instead of Google."""
    _Recorder.seen = []
    server = HTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    root = f"http://127.0.0.1:{server.server_port}"
    try:
        plan = cloud.submit_vertex_job(vertex_file, project="p", bucket="bkt", dry_run=False, access_token="tok",
                                       api_root=root, storage_root=root, echo=lambda s: None)
    finally:
        server.shutdown()
    assert plan["job"]["name"].endswith("/tuningJobs/42")
    (up_path, up_auth, up_body), (job_path, _, job_body) = _Recorder.seen
    assert up_path == "/upload/storage/v1/b/bkt/o?uploadType=media&name=ftlab%2Fftlab-support%2Ftrain.jsonl"
    assert up_auth == "Bearer tok" and up_body == vertex_file.read_bytes()
    assert job_path == "/v1/projects/p/locations/us-central1/tuningJobs"
    assert json.loads(job_body)["supervisedTuningSpec"]["trainingDatasetUri"] == "gs://bkt/ftlab/ftlab-support/train.jsonl"


def test_vertex_without_credentials_is_a_clear_error(vertex_file, monkeypatch):
    monkeypatch.delenv("GOOGLE_CLOUD_ACCESS_TOKEN", raising=False)
    monkeypatch.setitem(__import__("sys").modules, "google.auth", None)  # as if google-auth were not installed
    with pytest.raises(FtlabError, match="no Google credentials"):
        cloud.submit_vertex_job(vertex_file, project="p", bucket="b", dry_run=False, echo=lambda s: None)


def test_together_dry_run_and_missing_key(tmp_path, monkeypatch):
    f = cloud.convert(_openai(TOY[:20]), "together").write(tmp_path / "t.jsonl")
    lines: list[str] = []
    plan = cloud.submit_together_job(f, n_epochs=2, echo=lines.append)
    body = plan["request"]["rest"]["body"]
    assert plan["request"]["rest"]["url"] == "https://api.together.xyz/v1/fine-tunes"
    assert body["training_type"]["type"] == "Lora" and body["n_epochs"] == 2
    text = "\n".join(lines)
    assert "client.files.upload(file=" in text and "client.fine_tuning.create(training_file=train.id" in text
    monkeypatch.delenv("TOGETHER_API_KEY", raising=False)
    with pytest.raises(FtlabError, match="TOGETHER_API_KEY is not set"):
        cloud.submit_together_job(f, dry_run=False, echo=lambda s: None)
