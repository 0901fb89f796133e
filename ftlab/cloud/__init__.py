"""The cloud-managed paths: Bedrock, Vertex AI, Together AI and Azure AI Foundry (notebook 09).

One module per platform, plus what they share:

- ``common``: reading OpenAI chat JSONL line by line, the structured :class:`Problem`
  (``line``, ``code``, ``message``), :class:`Conversion` and :class:`Validation`.
- ``bedrock``, ``vertex``, ``together``, ``azure``: each platform's converter, reader, rules and
  submission.
- ``formats``: convert, validate, read back and round-trip for any platform by name.
- ``costs``: the cost table, a view of ``ftlab.cost``.

1. **Formats.** Convert the kit's OpenAI chat JSONL into each platform's documented
   fine-tuning format, check the platform's rules, and read it back::

       conv = convert_file("support_train.jsonl", "vertex", out="train.vertex.jsonl")
       conv.ok, conv.n_examples          # (True, 1020)
       read_back("train.vertex.jsonl", "vertex")[0] == read_jsonl("support_train.jsonl")[0]   # True

   Nothing is lost silently: whatever a format cannot hold (tool calls on Bedrock, per-message
   ``weight`` outside Together and Azure, a system message in the middle of a conversation)
   is a :class:`Problem` on the input line, printed as e.g. ``line 7, message 3: tool calls: ...``.
   Where a format holds the content but not an identifier (Gemini has no tool-call ids),
   conversion says so in ``warnings``, also per line.

2. **Cost.** ``cost_table`` prices a dataset on every platform (``ftlab/catalog/prices.yaml``).

3. **Submission through the real SDKs.** Bedrock goes through ``boto3`` (S3 upload,
   ``create_model_customization_job``, polling ``get_model_customization_job``); the same code
   runs offline against moto's in-process ``mock_aws`` and, with real credentials and
   ``dry_run=False``, against AWS. Vertex AI and Together get request builders that print the
   exact REST payload and SDK call with ``dry_run=True`` and submit for real when credentials
   exist.

The format rules were read on the providers' pages on 2026-11-23 (see ``FORMAT_SOURCES``; each
converter cites its page).
"""

from __future__ import annotations

from ftlab.cloud.azure import AZURE_MAX_BYTES, AZURE_MIN_EXAMPLES, from_azure, to_azure
from ftlab.cloud.bedrock import (
    BEDROCK_FORMATS,
    BEDROCK_MAX_RECORDS,
    BEDROCK_PC_MAX_CHARS,
    BEDROCK_SCHEMA,
    BEDROCK_TERMINAL,
    bedrock_job_request,
    bedrock_job_status,
    create_bedrock_prerequisites,
    from_bedrock,
    from_bedrock_prompt_completion,
    mock_aws,
    stop_bedrock_job,
    submit_bedrock_job,
    to_bedrock,
    to_bedrock_prompt_completion,
    wait_for_bedrock_job,
)
from ftlab.cloud.common import (
    PROBLEM_CODES,
    RETRIEVED,
    Conversion,
    Problem,
    Validation,
    read_chat_lines,
    write_records,
)
from ftlab.cloud.costs import caveat_range, cost_table, count_dataset_tokens, format_table, plot_costs
from ftlab.cloud.formats import (
    FORMAT_SOURCES,
    PLATFORMS,
    convert,
    convert_file,
    default_out,
    normalize_chat,
    read_back,
    round_trip,
    validate_for_platform,
)
from ftlab.cloud.together import (
    TOGETHER_API,
    from_together,
    submit_together_job,
    to_together,
    together_job_request,
)
from ftlab.cloud.vertex import (
    GCS_UPLOAD_API,
    VERTEX_API,
    VERTEX_RECOMMENDED_MIN,
    from_vertex,
    gcs_upload_request,
    submit_vertex_job,
    to_vertex,
    vertex_tuning_request,
)

__all__ = [
    "AZURE_MAX_BYTES", "AZURE_MIN_EXAMPLES", "BEDROCK_FORMATS", "BEDROCK_MAX_RECORDS", "BEDROCK_PC_MAX_CHARS",
    "BEDROCK_SCHEMA", "BEDROCK_TERMINAL", "FORMAT_SOURCES", "GCS_UPLOAD_API", "PLATFORMS", "PROBLEM_CODES",
    "RETRIEVED", "TOGETHER_API", "VERTEX_API", "VERTEX_RECOMMENDED_MIN", "Conversion", "Problem", "Validation",
    "bedrock_job_request", "bedrock_job_status", "caveat_range", "convert", "convert_file", "cost_table", "count_dataset_tokens",
    "create_bedrock_prerequisites", "default_out", "format_table", "from_azure", "from_bedrock",
    "from_bedrock_prompt_completion", "from_together", "from_vertex", "gcs_upload_request", "mock_aws",
    "normalize_chat", "plot_costs", "read_back", "read_chat_lines", "round_trip", "stop_bedrock_job",
    "submit_bedrock_job", "submit_together_job", "submit_vertex_job", "to_azure", "to_bedrock",
    "to_bedrock_prompt_completion", "to_together", "to_vertex", "together_job_request",
    "validate_for_platform", "vertex_tuning_request", "wait_for_bedrock_job", "write_records",
]
