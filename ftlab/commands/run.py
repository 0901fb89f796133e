"""ftlab run: execute every numbered notebook headless through papermill."""

__all__ = ["register"]


def register(sub) -> None:
    p = sub.add_parser("run", help="execute the numbered notebooks headless (papermill), offline on the toy world")
    p.add_argument("--out", help="output folder (default: runs/<timestamp>)")
    p.add_argument("-p", "--parameter", nargs=2, action="append", metavar=("NAME", "VALUE"),
                   help="pass a parameter to every notebook that declares it (YAML value: 3, 2e-4, true, text)")
    p.add_argument("--only", nargs="+", metavar="NN", help="run only these notebooks, by number or name (e.g. 04)")
    p.add_argument("--notebooks", help="folder of numbered notebooks (default: ./notebooks)")
    p.add_argument("--quiet", action="store_true", help="no per-cell progress bar")
    p.add_argument("--allow-network", action="store_true", help="do not block network access in the notebooks")

    def run(args):
        from ftlab.runner import main_run

        return main_run(args)

    p.set_defaults(func=run)
