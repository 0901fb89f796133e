"""The ``ftlab`` command line. Each subcommand lives in ``ftlab/commands/<name>.py``
and registers itself with ``register(subparsers)``; this module discovers them."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from ftlab.errors import FtlabError

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    from ftlab import __version__, commands

    parser = argparse.ArgumentParser(prog="ftlab", description="ftlab: learn and experiment with LLM fine-tuning.")
    parser.add_argument("--version", action="version", version=f"ftlab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"ftlab.commands.{info.name}")
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except FtlabError as exc:
        print(f"ftlab {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"ftlab {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
