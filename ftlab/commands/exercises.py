"""ftlab exercises: write exercise notebooks (prompt + answer cell + check) from the marked solutions."""

__all__ = ["register"]


def register(sub) -> None:
    p = sub.add_parser("exercises", help="write exercise notebooks from the '# BEGIN SOLUTION' regions of the notebooks")
    p.add_argument("--out", help="folder for the exercise notebooks (required unless --list)")
    p.add_argument("--solutions", action="store_true",
                   help="keep the solutions in the answer cells (the instructor's key; every check passes)")
    p.add_argument("--only", nargs="+", metavar="NN", help="only these notebooks, by number or name (e.g. 03 04)")
    p.add_argument("--notebooks", help="folder of numbered notebooks (default: ./notebooks)")
    p.add_argument("--list", action="store_true", help="list the exercises and write nothing")
    p.add_argument("--json", action="store_true", help="print the exercises as JSON")

    def run(args):
        import json

        from ftlab.errors import FtlabError
        from ftlab.exercises import find_exercises, write_exercises
        from ftlab.runner import find_notebooks_dir, numbered_notebooks

        books = numbered_notebooks(find_notebooks_dir(args.notebooks), args.only)
        if args.list:
            found = [e for b in books for e in find_exercises(b)]
            if args.json:
                print(json.dumps([e.to_json() for e in found], indent=2))
            else:
                for e in found:
                    print(f"{e.notebook}  {e.name:<22} {e.spec.title}  (answer: {', '.join(e.answers)})")
            return 0
        if not args.out:
            raise FtlabError("ftlab exercises needs --out DIR (or --list to only list the exercises)")
        written, found = write_exercises(books, args.out, solutions=args.solutions)
        if args.json:
            print(json.dumps({"notebooks": [str(p) for p in written], "exercises": [e.to_json() for e in found]}, indent=2))
        else:
            kind = "solution" if args.solutions else "exercise"
            for p in written:
                print(p)
            print(f"{len(found)} exercises in {len(written)} {kind} notebooks; index: {args.out}/EXERCISES.md")
        return 0

    p.set_defaults(func=run)
