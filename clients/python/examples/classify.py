"""Classify audio files with a Prosodia server and print the scores.

    python examples/classify.py [--addr HOST:PORT] FILE...

Needs the `prosodia` package (pip install ./clients/python) and a running server.
"""

from __future__ import annotations

import argparse
import sys

import prosodia


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", metavar="FILE")
    parser.add_argument("--addr", default=prosodia.DEFAULT_TARGET)
    parser.add_argument("--model", default="", help="model name (default: the server's)")
    args = parser.parse_args()

    failed = 0
    with prosodia.Client(args.addr, timeout=60) as client:
        for path in args.files:
            try:
                result = client.classify(path, args.model)
            except prosodia.ProsodiaError as e:
                # e.code is a grpc.StatusCode, e.message the server's explanation.
                print(f"{path}: {e.code_name}: {e.message}", file=sys.stderr)
                failed += 1
                continue
            ranked = sorted(result.scores.items(), key=lambda kv: kv[1], reverse=True)
            scores = "  ".join(f"{label} {p:.2f}" for label, p in ranked)
            print(
                f"{path}: {result.label}  ({scores})  "
                f"[{result.model} v{result.model_version}, {result.audio_seconds:.1f} s audio, "
                f"{result.durations.total_ms:.0f} ms]"
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
