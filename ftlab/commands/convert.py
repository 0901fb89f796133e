"""ftlab convert: OpenAI chat JSONL → Bedrock, Vertex AI, Together or Azure fine-tuning JSONL.

    ftlab convert data/support_train.jsonl --to vertex            # writes data/support_train.vertex.jsonl
    ftlab convert train.jsonl --to bedrock --out s3-ready.jsonl --json

Exit codes: 0 converted and valid; 1 some examples cannot be converted (nothing is written,
each problem is listed with its line); 2 bad usage (missing file, unknown platform).
"""

from __future__ import annotations

import json

__all__ = ["register"]


def register(sub) -> None:
    from ftlab.cloud import BEDROCK_FORMATS, PLATFORMS

    p = sub.add_parser("convert", help="convert OpenAI chat JSONL to a managed platform's fine-tuning format")
    p.add_argument("file", help="OpenAI chat JSONL ({\"messages\": [...]} per line)")
    p.add_argument("--to", required=True, choices=PLATFORMS, help="target platform")
    p.add_argument("--out", help="output file (default: FILE's name with .PLATFORM.jsonl)")
    p.add_argument("--bedrock-format", choices=BEDROCK_FORMATS, default="conversation",
                   help="Bedrock only: bedrock-conversation-2024 (Nova, Llama 3.x) or prompt/completion (Titan, Cohere)")
    p.add_argument("--json", action="store_true", help='print {"ok", "n_examples", "errors", ...} as JSON')

    def run(args) -> int:
        from ftlab.cloud import convert_file

        conv = convert_file(args.file, args.to, args.out, bedrock_format=args.bedrock_format)
        if args.json:
            print(json.dumps(conv.report(), ensure_ascii=False))
        elif conv.ok:
            print(f"converted {conv.n_examples} examples for {args.to}: {conv.path}")
            for w in conv.warnings:
                print(f"warning: {w}")
        else:
            print(f"{len(conv.errors)} problem(s); nothing written ({conv.n_examples} of {conv.n_input} examples "
                  f"would convert):")
            for e in conv.errors:
                print(f"  {e}")
        return 0 if conv.ok else 1

    p.set_defaults(func=run)
