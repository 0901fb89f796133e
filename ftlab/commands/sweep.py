"""ftlab sweep: run one notebook over a grid of parameters (papermill) and compare the runs."""

__all__ = ["register"]


def register(sub) -> None:
    p = sub.add_parser("sweep", help="run a notebook once per grid point and compare the runs (table + plot)")
    p.add_argument("notebook", help="notebook number, name or path (e.g. 04)")
    p.add_argument("-p", "--parameter", nargs=2, action="append", metavar=("NAME", "V1,V2,..."), required=True,
                   help="a parameter and its comma-separated values (YAML values: 3, 2e-4, true, text); repeat for a grid")
    p.add_argument("--out", help="output folder (default: runs/sweep-<notebook>-<timestamp>)")
    p.add_argument("--figures", help="comma-separated figures for the table (default: the scalar figures that differ)")
    p.add_argument("--notebooks", help="folder of numbered notebooks (default: ./notebooks)")
    p.add_argument("--json", action="store_true", help="print the table rows as JSON")
    p.add_argument("--progress", action="store_true", help="show papermill's per-cell progress bar")
    p.add_argument("--allow-network", action="store_true", help="do not block network access in the notebooks")

    def run(args):
        import json
        import sys

        from ftlab.runner import resolve_notebook
        from ftlab.sweep import parse_grid, run_sweep

        grid = parse_grid(args.parameter)
        path = resolve_notebook(args.notebook, args.notebooks)
        figures = [f.strip() for f in args.figures.split(",") if f.strip()] if args.figures else None
        sweep = run_sweep(path, grid, out=args.out, figures=figures, progress=args.progress,
                          offline=not args.allow_network, log=lambda m: print(m, file=sys.stderr))
        if args.json:
            print(json.dumps(sweep.rows(), indent=2, default=str))
        else:
            print((sweep.out / "sweep.md").read_text(encoding="utf-8"))
        failed = sum(not r.ok for r in sweep.runs)
        print(f"{len(sweep.runs) - failed}/{len(sweep.runs)} runs ok. Table: {sweep.files['markdown']}, "
              f"{sweep.files['csv']}" + (f"; plot: {sweep.files['plot']}" if "plot" in sweep.files else ""),
              file=sys.stderr)
        return 1 if failed else 0

    p.set_defaults(func=run)
