"""Helpers shared by the tests: where the fixtures and the server are."""

from __future__ import annotations

import os
import unittest
from pathlib import Path
from typing import Optional

HERE = Path(__file__).resolve().parent
PACKAGE_ROOT = HERE.parent  # clients/python
REPO_ROOT = PACKAGE_ROOT.parent.parent


def shared_dir() -> Path:
    """The project's shared/ folder beside the repository (override: PROSODIA_SHARED)."""
    env = os.environ.get("PROSODIA_SHARED")
    return Path(env) if env else REPO_ROOT.parent / "shared"


def fixture(rel: str) -> Path:
    """A file under shared/fixtures; fails the test run if it is missing."""
    path = shared_dir() / "fixtures" / rel
    if not path.is_file():
        raise FileNotFoundError(f"fixture {path} is missing (set PROSODIA_SHARED?)")
    return path


def server_addr() -> Optional[str]:
    """The server under test, from PROSODIA_ADDR (host:port)."""
    return os.environ.get("PROSODIA_ADDR") or None


def needs_server(cls: type) -> type:
    """Skips a TestCase class (with the reason) when PROSODIA_ADDR is not set."""
    if server_addr() is None:
        return unittest.skip("PROSODIA_ADDR is not set: no server to test against")(cls)
    return cls
