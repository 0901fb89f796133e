"""What fine-tuning costs: the price catalog, training cost per path, and the inference break-even.

Taught in ``notebooks/02_cost_math.ipynb``; ``ftlab cost`` prints the same table, and
``ftlab.cloud.cost_table`` (notebook 09) is a view of the same rows.

The prices live in one file, ``ftlab/catalog/prices.yaml`` (data, not code), each entry with its
``source``, ``as_of`` date and ``confidence`` (seed, provider or unconfirmed). This module owns
loading it and all the arithmetic, for every pricing kind: per training token (OpenAI, Together,
Bedrock, Gemini on Vertex), per GPU-hour (self-hosted), per training hour (open models on Vertex and
Foundry) and per hour of the RFT training loop (o4-mini). The worked example of the articles::

    >>> tokens = training_tokens(5_000, 300, 3)          # 4,500,000
    >>> cost_for("gpt-4.1", tokens).training_cost_usd     # $3.00/M × 4.5M
    13.5
    >>> cost_for("a100-40gb-spot", tokens).training_cost_usd   # 2 GPU-hours × $1.50
    3.0
    >>> cost_for("foundry-managed-a100-80gb", tokens).training_cost_usd   # ~2 h (A100 throughput) × $3.67
    7.34

Prices move: verify at the provider's pricing page before you spend.
Where things are:

- ``catalog``: the price catalog, loaded and checked (:func:`load_catalog`, :class:`Catalog`).
- ``dates``: can a job be started on an entry on a given date (:func:`availability`, :func:`parse_date`).
- ``training``: training cost per path (:func:`training_tokens`, :func:`cost_for`, :func:`training_costs`).
- ``counting``: exact token counts of a dataset, offline (:func:`dataset_tokens`).
- ``breakeven``: when a self-hosted GPU beats the API (:func:`break_even`, :func:`plot_break_even`).
- ``tables``: the rows and the catalog as text and tables (:func:`format_cost_table`, :func:`training_costs_table`).
- ``explorer``: the live widget of notebook 02 (:func:`cost_explorer`).

Prices move: verify at the provider's pricing page before you spend.
"""

from __future__ import annotations

from ftlab.cost.breakeven import *  # noqa: F403 (each module lists its public names in __all__)
from ftlab.cost.breakeven import __all__ as _breakeven
from ftlab.cost.catalog import *  # noqa: F403 (each module lists its public names in __all__)
from ftlab.cost.catalog import __all__ as _catalog
from ftlab.cost.counting import *  # noqa: F403 (each module lists its public names in __all__)
from ftlab.cost.counting import __all__ as _counting
from ftlab.cost.dates import *  # noqa: F403 (each module lists its public names in __all__)
from ftlab.cost.dates import __all__ as _dates
from ftlab.cost.explorer import *  # noqa: F403 (each module lists its public names in __all__)
from ftlab.cost.explorer import __all__ as _explorer
from ftlab.cost.tables import *  # noqa: F403 (each module lists its public names in __all__)
from ftlab.cost.tables import __all__ as _tables
from ftlab.cost.training import *  # noqa: F403 (each module lists its public names in __all__)
from ftlab.cost.training import __all__ as _training

__all__ = [*_breakeven, *_catalog, *_counting, *_dates, *_explorer, *_tables, *_training]
