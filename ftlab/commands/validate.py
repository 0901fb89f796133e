"""ftlab validate: check a fine-tuning JSONL file the way OpenAI will, before spending money."""

from __future__ import annotations

import json

__all__ = ["register"]


def _fmt_dist(d: dict | None) -> str:
    if not d:
        return "-"
    return f"min {d['min']}, median {d['median']:g}, mean {d['mean']:.1f}, p90 {d['p90']:g}, max {d['max']}"


def _availability(model: str, as_of) -> dict | None:
    """The catalog's availability of ``model`` on ``as_of``, or None when the catalog does not know the model."""
    from ftlab import cost
    from ftlab.errors import FtlabError

    try:
        a = cost.availability(model, as_of)
    except FtlabError:
        return None
    return {"entry": a.entry, "as_of": a.as_of, "availability_status": a.status, "availability_date": a.date,
            "reason": a.reason, "retires_on": a.retires_on, "alternative": a.alternative, "source": a.source,
            "confidence": a.confidence}


def register(sub) -> None:
    p = sub.add_parser(
        "validate",
        help="validate an OpenAI chat fine-tuning JSONL file (exit 0 valid, 1 errors, 2 usage/IO problem)",
        description="Validate an OpenAI chat fine-tuning JSONL file: the cookbook's format checks, tool calling, "
                    "weights, token limits, personal data, duplicates; exact token statistics, epochs and cost.",
    )
    p.add_argument("file", help="the .jsonl file")
    p.add_argument("--model", default="gpt-4.1-mini", help="the base model to fine-tune (default: gpt-4.1-mini)")
    p.add_argument("--max-tokens", type=int, help="per-example token limit (default: the model's limit)")
    p.add_argument("--encoding", choices=["o200k_base", "cl100k_base"],
                   help="tokenizer override (default: the model's); cl100k_base + --max-tokens 4096 = the cookbook's rules")
    p.add_argument("--epochs", type=int, help="epochs for trained tokens and cost (default: the cookbook's heuristic)")
    p.add_argument("--as-of", metavar="DATE", help="availability of the model's fine-tuning route on this date, "
                   "YYYY-MM-DD (default: today): stats.availability.availability_status is open, closing, closed or retired")
    p.add_argument("--method", choices=["sft", "dpo"], default="sft",
                   help="the file's format: sft (chat 'messages', the default) or dpo (OpenAI preference pairs: "
                        "'input', 'preferred_output', 'non_preferred_output')")
    p.add_argument("--json", action="store_true", help="print one JSON object: ok, n_examples, errors, warnings, stats")

    def run(args) -> int:
        from ftlab import cost
        from ftlab.errors import ParameterError
        from ftlab.validate import describe_personal_data, validate_file

        if args.epochs is not None and args.epochs < 1:
            raise ParameterError(f"--epochs {args.epochs}: expected an int >= 1")
        as_of = cost.parse_date(args.as_of, "--as-of")
        if args.method == "dpo":
            from ftlab.validate_dpo import validate_dpo_file as validate_file
        report = validate_file(args.file, model=args.model, max_tokens=args.max_tokens,
                               encoding=args.encoding, n_epochs=args.epochs)
        av = _availability(args.model, as_of)
        if av is not None:
            report.stats["availability"] = av
            if "cost" in report.stats:
                report.stats["cost"].update(availability_status=av["availability_status"],
                                            availability_date=av["availability_date"])
        if args.json:
            print(json.dumps(report.to_dict()))
        else:
            s = report.stats
            print(report.summary())
            if report.personal_data_lines:
                print(f"PERSONAL DATA: {describe_personal_data(report.personal_data())}. Remove or mask it before uploading: "
                      "uploaded files stay with the provider until you delete them.")
            print(f"model {s['model']} ({s['encoding']}), limit {s['max_tokens_per_example']} tokens per example")
            print(f"tokens per example: {_fmt_dist(s.get('tokens_per_example'))}")
            print(f"assistant tokens per example: {_fmt_dist(s.get('assistant_tokens_per_example'))}")
            print(f"billing tokens per epoch: {s['billing_tokens']} × {s['n_epochs']} epochs "
                  f"({s['n_epochs_source']}) = {s['trained_tokens']} trained tokens")
            if "cost" in s:
                c = s["cost"]
                print(f"training cost: ${c['usd']:.4f} ({c['trained_tokens']} tokens × ${c['usd_per_1m_training_tokens']:.2f}/M, "
                      f"{c['catalog_entry']}, {c['confidence']} price as of {c['as_of']}: verify at the provider's pricing page)")
            else:
                print(f"training cost: no per-token training price for {s['model']} in the price catalog")
            if av is not None:
                print(f"availability on {av['as_of']}: {av['availability_status']}"
                      f"{' (' + av['availability_date'] + ')' if av['availability_date'] else ''}: {av['reason']}")
        return 0 if report.ok else 1

    p.set_defaults(func=run)
