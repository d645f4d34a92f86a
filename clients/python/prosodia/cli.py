"""``prosodia-py``: classify, stream and list models from the command line, as JSON lines.

    prosodia-py [--addr HOST:PORT] classify [--model NAME] FILE...
    prosodia-py [--addr HOST:PORT] features [--preset NAME] FILE...
    prosodia-py [--addr HOST:PORT] stream [--chunk-ms MS] [--realtime] [--no-interim] FILE
    prosodia-py [--addr HOST:PORT] models

Every result is one JSON object on its own line. A request that fails prints
``{"error": {"code": ..., "message": ...}}`` (with ``"path"`` for file commands) and the
command goes on with the next file; the exit status is 1 if anything failed. Before the
command: ``--timeout S`` (deadline per call) and ``--retries N`` (retries of a unary call that
fails with UNAVAILABLE, 0 to 4, default 4; a stream is never resent).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from typing import Any, Dict, List, Optional, Sequence

from prosodia._types import ProsodiaError
from prosodia.client import DEFAULT_RETRIES, DEFAULT_TARGET, MAX_RETRIES, Client


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Runs the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    with Client(args.addr, timeout=args.timeout, retries=args.retries) as client:
        return int(args.run(client, args))


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="prosodia-py",
        description="Talk to a Prosodia server; prints one JSON object per line.",
    )
    p.add_argument(
        "--addr",
        default=os.environ.get("PROSODIA_ADDR", DEFAULT_TARGET),
        help=f"server address (default: $PROSODIA_ADDR or {DEFAULT_TARGET})",
    )
    p.add_argument("--timeout", type=float, default=None, help="deadline per call, seconds")
    p.add_argument(
        "--retries",
        type=int,
        default=DEFAULT_RETRIES,
        choices=range(MAX_RETRIES + 1),
        metavar="N",
        help=f"retries of a unary call that fails with UNAVAILABLE, 0 to {MAX_RETRIES} "
        f"(default {DEFAULT_RETRIES}); streams are never resent",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    c = sub.add_parser("classify", help="classify audio files (any format the server reads)")
    c.add_argument("files", nargs="+", metavar="FILE")
    c.add_argument("--model", default="", help="model name (default: the server's default)")
    c.add_argument("--model-version", type=int, default=0)
    c.set_defaults(run=_classify)

    f = sub.add_parser("features", help="the 46 utterance features of audio files")
    f.add_argument("files", nargs="+", metavar="FILE")
    f.add_argument("--preset", default="", help="built-in configuration: seed or speech")
    f.add_argument("--model", default="", help="use this model's feature configuration")
    f.set_defaults(run=_features)

    s = sub.add_parser("stream", help="stream a PCM WAV file and print results as they come")
    s.add_argument("file", metavar="FILE")
    s.add_argument("--model", default="")
    s.add_argument("--chunk-ms", type=int, default=20, help="audio per message (default 20)")
    s.add_argument("--realtime", action="store_true", help="send at the audio's own speed")
    s.add_argument("--no-interim", action="store_true", help="no per-window results")
    s.add_argument("--window", type=float, default=0.0, help="window seconds (0: model's)")
    s.add_argument("--hop", type=float, default=0.0, help="hop seconds (0: model's)")
    s.set_defaults(run=_stream)

    m = sub.add_parser("models", help="list the server's models and their versions")
    m.set_defaults(run=_models)
    return p


def _emit(obj: Dict[str, Any]) -> None:
    print(json.dumps(obj, ensure_ascii=False), flush=True)


def _error(err: ProsodiaError, **extra: Any) -> None:
    where = f"{extra['path']}: " if "path" in extra else ""
    print(f"prosodia-py: {where}{err}", file=sys.stderr)
    _emit({**extra, "error": {"code": err.code_name, "message": err.message}})


def _classify(client: Client, args: argparse.Namespace) -> int:
    failed = 0
    for path in args.files:
        try:
            result = client.classify(path, args.model, model_version=args.model_version)
        except ProsodiaError as e:
            _error(e, path=path)
            failed += 1
            continue
        _emit({"path": path, **dataclasses.asdict(result)})
    return 1 if failed else 0


def _features(client: Client, args: argparse.Namespace) -> int:
    failed = 0
    for path in args.files:
        try:
            feats = client.extract_features(path, preset=args.preset, model=args.model)
        except ProsodiaError as e:
            _error(e, path=path)
            failed += 1
            continue
        row = dataclasses.asdict(feats)
        row.pop("frames")
        _emit({"path": path, **row})
    return 1 if failed else 0


def _stream(client: Client, args: argparse.Namespace) -> int:
    try:
        for event in client.stream_file(
            args.file,
            chunk_ms=args.chunk_ms,
            realtime=args.realtime,
            model=args.model,
            window=args.window,
            hop=args.hop,
            interim=not args.no_interim,
        ):
            row = dataclasses.asdict(event)
            _emit({"type": row.pop("kind"), **row})
    except ProsodiaError as e:
        _error(e, path=args.file)
        return 1
    return 0


def _models(client: Client, args: argparse.Namespace) -> int:
    try:
        listing = client.models()
    except ProsodiaError as e:
        _error(e)
        return 1
    for model in listing.models:
        versions: List[Dict[str, Any]] = [dataclasses.asdict(v) for v in model.versions]
        _emit(
            {
                "name": model.name,
                "default": model.name == listing.default_model,
                "versions": versions,
            }
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
