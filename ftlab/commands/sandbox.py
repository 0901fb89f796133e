"""ftlab sandbox: serve the local OpenAI-compatible fine-tuning API."""

from __future__ import annotations

import contextlib

__all__ = ["register"]


def register(sub) -> None:
    p = sub.add_parser(
        "sandbox",
        help="serve a local OpenAI-compatible fine-tuning API (files, fine_tuning.jobs, chat.completions)",
        description="Serve the OpenAI fine-tuning API locally: point the openai SDK at the printed base_url. "
                    "Jobs really fine-tune the local toy model with LoRA. State persists in --data-dir.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default: 8000; 0 picks a free one)")
    p.add_argument("--data-dir", help="where files and jobs are kept (default: ~/.cache/ftlab/sandbox)")
    p.add_argument("--fault-rate", type=float, default=0.0,
                   help="inject faults into this fraction of requests (0 to 1; for testing client retries)")
    p.add_argument("--faults", default="429,500,slow", help="fault kinds to inject: 429, 500, slow (comma-separated)")
    p.add_argument("--toy-seed", type=int, default=0, help="seed of the toy base model")
    p.add_argument("--as-of", metavar="DATE", help="emulate OpenAI's fine-tuning wind-down on this date (YYYY-MM-DD): job "
                   "creation is refused with the API's error shape once the catalog's dates say so (default: no emulation)")
    p.add_argument("--org-status", choices=["new", "active", "inactive"],
                   help="the organisation the wind-down is emulated for: new (never fine-tuned), inactive (no "
                        "fine-tuned-model inference in 60 days) or active; with --as-of (alone: today)")
    p.add_argument("--base-model", help="the local model jobs fine-tune and ft: models answer from (default: the toy; "
                   "e.g. HuggingFaceTB/SmolLM2-135M-Instruct, built offline, or a local HF folder)")
    p.add_argument("--verbose", action="store_true", help="log every request")
    p.add_argument("--url-file", help="also write the base URL to this file once listening (for launchers)")
    p.add_argument("--exit-with-parent", action="store_true",
                   help="stop when the process that started this one exits (for launchers)")

    def run(args) -> int:
        import signal
        import threading

        from ftlab.errors import ParameterError
        from ftlab.sandbox import Sandbox
        from ftlab.sandbox.server import Faults

        if not 0 <= args.port <= 65535:
            raise ParameterError(f"--port {args.port}: expected 0 to 65535")
        try:
            faults = Faults(rate=args.fault_rate, kinds=tuple(k.strip() for k in args.faults.split(",") if k.strip()))
        except ValueError as exc:
            raise ParameterError(str(exc)) from None
        if args.base_model:
            from ftlab.params import check_model_id
            from ftlab.toymodel import TOY_MODEL_ID

            check_model_id("--base-model", args.base_model, [TOY_MODEL_ID])
        sbx = Sandbox(args.data_dir, host=args.host, port=args.port, faults=faults, toy_seed=args.toy_seed,
                      verbose=args.verbose, as_of=args.as_of, org_status=args.org_status, base_model=args.base_model)
        try:
            sbx.start()
        except OSError as exc:
            raise ParameterError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
        print(f"ftlab sandbox: listening on {sbx.url} (data: {sbx.data_dir})", flush=True)
        if sbx.gate is not None:
            print(f"ftlab sandbox: emulating OpenAI's fine-tuning wind-down on {args.as_of or 'today'} for an "
                  f"organisation that is {args.org_status or 'unspecified'}; /openai/... (Azure) routes are not gated",
                  flush=True)
        if args.url_file:
            from pathlib import Path

            tmp = Path(args.url_file + ".tmp")
            tmp.write_text(sbx.url)
            tmp.replace(args.url_file)
        print("Use it with: OpenAI(base_url=<that url>, api_key='anything'). Ctrl-C stops it.", flush=True)
        done = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: done.set())
        if args.exit_with_parent:
            import os

            parent = os.getppid()

            def watch() -> None:
                while not done.wait(1.0):
                    if os.getppid() != parent:  # re-parented: the launcher is gone
                        done.set()

            threading.Thread(target=watch, name="ftlab-sandbox-parent-watch", daemon=True).start()
        with contextlib.suppress(KeyboardInterrupt):
            done.wait()
        sbx.stop()
        print("ftlab sandbox: stopped", flush=True)
        return 0

    p.set_defaults(func=run)
