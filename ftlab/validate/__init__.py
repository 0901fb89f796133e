"""Validate an OpenAI chat fine-tuning JSONL file the way OpenAI will, before any money is spent.

The articles warn that "malformed examples fail silently". This module runs the OpenAI
cookbook's format checks (``Chat_finetuning_data_prep.ipynb``, same error codes), the rules
the fine-tuning API adds (≥10 examples, ``weight`` 0/1 on assistant messages only, a
per-example token limit), tool and function calling, and warnings a careful person wants
before uploading: duplicates, missing system/user messages, personal data, and tool
arguments that are not a JSON object (or are double-encoded).

Token statistics are exact (``ftlab.tokens``, tiktoken with the model's encoding) and follow
the cookbook's counting rule: 3 tokens of framing per message, 1 more per ``name``, 3 to prime
the reply. ``encoding="cl100k_base", max_tokens=4096`` reproduces the cookbook's figures.

Example::

    report = validate_file("train.jsonl", model="gpt-4.1-mini")
    report.ok                       # False when OpenAI would reject the file
    report.errors[0]                # Finding(line=3, code='invalid_json', message='...')
    report.stats["billing_tokens"]  # tokens charged per epoch

``validate_*`` never raises on the file's content, whatever its bytes: every problem becomes a
finding with its 1-based line number (``None`` for file-level findings).
Where things are:

- ``rules``: OpenAI's limits as data, :class:`Finding` and :class:`Report`, :func:`default_epochs`.
- ``checks``: the format checks of one example (the cookbook's codes and the API's rules).
- ``personal``: personal data in the text (:func:`find_personal_data`, :func:`personal_data_by_line`).
- ``counting``: exact token counts of an example (:func:`count_example_tokens`), :func:`estimate_cost`.
- ``files``: the entry points (:func:`validate_file`, :func:`validate_bytes`, :func:`read_file_bytes`).
"""

from __future__ import annotations

from ftlab.validate.checks import *  # noqa: F403 (each module lists its public names in __all__)
from ftlab.validate.checks import __all__ as _checks
from ftlab.validate.counting import *  # noqa: F403 (each module lists its public names in __all__)
from ftlab.validate.counting import __all__ as _counting
from ftlab.validate.files import *  # noqa: F403 (each module lists its public names in __all__)
from ftlab.validate.files import __all__ as _files
from ftlab.validate.personal import *  # noqa: F403 (each module lists its public names in __all__)
from ftlab.validate.personal import __all__ as _personal
from ftlab.validate.rules import *  # noqa: F403 (each module lists its public names in __all__)
from ftlab.validate.rules import __all__ as _rules

__all__ = [*_checks, *_counting, *_files, *_personal, *_rules]
