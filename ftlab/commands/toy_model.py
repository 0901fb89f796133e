"""ftlab toy-model: build (or reuse) the offline toy base model and print its figures."""

import json

__all__ = ["register"]


def register(sub) -> None:
    p = sub.add_parser("toy-model", help="build or reuse the tiny pretrained Llama of the toy world")
    p.add_argument("--out", help="folder to write the model to (default: the ftlab cache)")
    p.add_argument("--seed", type=int, default=0, help="seed of the build (default 0)")
    p.add_argument("--force", action="store_true", help="rebuild even if a cached model exists")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--dump", metavar="DIR", help="write the toy's data as JSONL to DIR (corpus, probes, support "
                   "splits, catalogs) and say how many probes are in the training data, instead of building")

    def run(args):
        from ftlab.toymodel import build_toy_model, dump_toy_data, toy_overlap

        if args.dump:
            files = dump_toy_data(args.dump, seed=args.seed)
            overlap = toy_overlap(args.seed)
            if args.json:
                print(json.dumps({"files": {k: str(v) for k, v in files.items()}, "overlap": overlap}))
            else:
                for name, path in files.items():
                    print(f"{name:15} {len(path.read_text(encoding='utf-8').splitlines()):6} rows  {path}")
                for name, o in overlap.items():
                    print(f"probes {name}: {o['in_training']} of {o['n']} user prompts also in the training data")
            return 0
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
