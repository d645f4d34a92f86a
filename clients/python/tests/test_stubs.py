"""The committed stubs in prosodia/v1 are what generate.sh makes from proto/ now."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

from _support import PACKAGE_ROOT

GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")


def _generated(folder: Path) -> dict[str, bytes]:
    return {
        p.name: p.read_bytes()
        for p in sorted(folder.iterdir())
        if p.name.endswith(GENERATED_SUFFIXES)
    }


class StubsAreFresh(unittest.TestCase):
    def test_committed_stubs_match_a_fresh_generation(self) -> None:
        if importlib.util.find_spec("grpc_tools") is None:
            reason = "grpcio-tools is not installed (scripts/install-python-clients.sh installs it)"
            print(f"SKIP test_committed_stubs_match_a_fresh_generation: {reason}", file=sys.stderr)
            self.skipTest(reason)
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(
                ["bash", str(PACKAGE_ROOT / "generate.sh"), tmp],
                check=True,
                env={**os.environ, "PYTHON": sys.executable},
            )
            fresh = _generated(Path(tmp) / "prosodia" / "v1")
        committed = _generated(PACKAGE_ROOT / "prosodia" / "v1")
        self.assertTrue(fresh, "generate.sh produced no stubs")
        self.assertEqual(
            sorted(committed),
            sorted(fresh),
            "the committed stub files differ from the generated set; run clients/python/generate.sh",
        )
        stale = [name for name in fresh if fresh[name] != committed[name]]
        self.assertEqual(
            stale, [], "stale stubs (the proto changed?); run clients/python/generate.sh"
        )


if __name__ == "__main__":
    unittest.main()
