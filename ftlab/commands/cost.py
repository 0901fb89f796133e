"""ftlab cost: what a fine-tuning run costs on every path in the price catalog.

    ftlab cost --examples 5000 --tokens-per-example 300 --epochs 3 [--training-hours H] [--as-of DATE] [--json]

Hour-priced entries (self-hosted GPUs, open models on Vertex and Foundry) bill the hours the
catalog's throughput table estimates for the run, unless ``--training-hours`` gives them; o4-mini's
reinforcement fine-tuning is billed per hour of its training loop and is priced only with it.
"""

from __future__ import annotations

import json

from ftlab.errors import ParameterError

__all__ = ["register"]


def _int(name: str, text: str, minimum: int) -> int:
    """Parse an integer option ourselves, so a bad value is one line naming the option."""
    try:
        value = int(text.replace("_", "").replace(",", ""))
    except ValueError:
        raise ParameterError(f"--{name.replace('_', '-')} {text!r} is not a whole number; give e.g. 3") from None
    if value < minimum:
        raise ParameterError(f"--{name.replace('_', '-')} {value} is out of range: expected a whole number >= {minimum}")
    return value


def _float(name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ParameterError(f"--{name.replace('_', '-')} {text!r} is not a number; give e.g. 1.5") from None
    if value < 0:
        raise ParameterError(f"--{name.replace('_', '-')} {value:g} is out of range: expected a number >= 0")
    return value


def register(sub) -> None:
    p = sub.add_parser(
        "cost",
        help="training cost of a fine-tuning run on every path (OpenAI, cloud-managed, self-hosted GPUs)",
        description="Training tokens = examples × tokens per example × epochs, priced with the catalog in "
                    "ftlab/catalog/prices.yaml (every price has a source and an as_of date: verify before you spend).",
    )
    p.add_argument("--examples", required=True, metavar="N", help="training examples")
    p.add_argument("--tokens-per-example", required=True, metavar="T", help="average tokens per example")
    p.add_argument("--epochs", required=True, metavar="E", help="epochs (passes over the data)")
    p.add_argument("--model", metavar="ID", help="only this catalog entry (a model such as gpt-4.1, or a GPU such as a100-40gb-spot)")
    p.add_argument("--setup-hours", default="0", metavar="H",
                   help="GPU hours spent setting up the instance, billed on self-hosted rows (default 0)")
    p.add_argument("--training-hours", metavar="H",
                   help="bill hour-priced entries (GPUs, managed per-training-hour jobs, o4-mini RFT) for H hours "
                        "instead of the throughput estimate (RFT has no estimate: without H it shows no figure)")
    p.add_argument("--catalog", metavar="FILE", help="a price catalog YAML to use instead of the shipped one")
    p.add_argument("--as-of", metavar="DATE", help="availability on this date, YYYY-MM-DD (default: today): each row's "
                   "availability_status is open, closing, closed or retired; unavailable rows are marked, not hidden")
    p.add_argument("--json", action="store_true",
                   help='print {"training_tokens": ..., "as_of": ..., "rows": [{"path", "model", "training_cost_usd", '
                        '"availability_status", "availability_date", ...}]}')

    def run(args) -> int:
        from ftlab import cost

        examples = _int("examples", args.examples, 1)
        per_example = _int("tokens_per_example", args.tokens_per_example, 1)
        epochs = _int("epochs", args.epochs, 1)
        setup = _float("setup_hours", args.setup_hours)
        hours = None if args.training_hours is None else _float("training_hours", args.training_hours)
        as_of = cost.parse_date(args.as_of, "--as-of")
        catalog = cost.load_catalog(args.catalog)
        tokens = cost.training_tokens(examples, per_example, epochs)
        if args.model:
            rows = [cost.cost_for(args.model, tokens, setup_hours=setup, training_hours=hours, as_of=as_of, catalog=catalog)]
        else:
            rows = cost.training_costs(tokens, setup_hours=setup, training_hours=hours, as_of=as_of, catalog=catalog)
        if args.json:
            print(json.dumps(cost.cost_summary(tokens, rows, as_of), indent=2))
        else:
            print(cost.format_cost_table(tokens, rows, as_of))
        return 0

    p.set_defaults(func=run)
