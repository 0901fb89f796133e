"""ftlab toy-model: build (or reuse) the offline toy base model and print its figures."""

import json


def register(sub) -> None:
    p = sub.add_parser("toy-model", help="build or reuse the tiny pretrained Llama of the toy world")
    p.add_argument("--out", help="folder to write the model to (default: the ftlab cache)")
    p.add_argument("--seed", type=int, default=0, help="seed of the build (default 0)")
    p.add_argument("--force", action="store_true", help="rebuild even if a cached model exists")
    p.add_argument("--json", action="store_true", help="print one JSON object")

    def run(args):
        from ftlab.toymodel import build_toy_model

        log = None if args.json else (lambda m: print(m, flush=True))
        rep = build_toy_model(out=args.out, seed=args.seed, force=args.force, log=log)
        if args.json:
            print(json.dumps(rep.to_dict()))
        else:
            how = "reused from cache" if rep.cached else f"built in {rep.build_seconds:.0f} s"
            print(f"toy model ({rep.n_parameters:,} parameters, {how}): {rep.path}")
            print(f"  general-skill accuracy {rep.general_accuracy:.0%} · refusal rate {rep.refusal_rate:.0%} · "
                  f"target-task accuracy {rep.target_accuracy:.0%}")
        return 0

    p.set_defaults(func=run)
