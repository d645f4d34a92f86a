#!/usr/bin/env python3
"""Runs every shell command the documentation shows, so the docs keep working.

    python3 scripts/doc-commands.py              # README.md, docs/*.md, clients/*/README.md
    python3 scripts/doc-commands.py docs/quickstart.md
    python3 scripts/doc-commands.py --list       # show the blocks and what would be skipped

Every fenced block whose info string starts with `sh` (or `bash`, `shell`) is run with bash
from the repository root, in the order of the file, and must exit with status 0. Within a
block:

* `# expect: TEXT` (a comment at the end of a line or on its own) requires TEXT to appear in
  the block's output (stdout and stderr together);
* `# expect-status: N` requires the block to exit with status N instead of 0 (the block stops
  at its first failing command, so such a command goes last in its block);
* a line that starts the server in the background, `cargo run ... -p prosodia-server ... &`
  (or `.../prosodia-server ... &`), is followed by a wait: the block goes on once the
  server's `--listen` (or `PROSODIA_LISTEN=`) address, default 127.0.0.1:50051, accepts
  connections, and fails if the server exits first or nothing listens within
  `PROSODIA_DOC_SERVER_TIMEOUT` seconds (900: enough for a release build). A block that
  consists only of a foreground server command, without `expect` comments, is one "started
  in a second terminal" and runs the same way. Servers keep running for the later blocks of
  the same file and are stopped (SIGTERM, then SIGKILL) when the file is done.

Blocks that must not run are marked in the Markdown with a word after the language,
```` ```sh norun ````: installs that need the network, systemd, docker, kubectl, the test command
itself, long benchmarks or training runs, commands needing a GPU. Markdown renderers ignore
the extra word. The script prints how many blocks it skipped, and why.

The blocks of one file run as if typed into one terminal: each starts in the working
directory and with the exported variables the previous (successful) block left. Blocks run
with `set -eo pipefail`, stdin from /dev/null, the project's Python virtual
environment first on PATH (from `scripts/install-python-clients.sh`: `python`, `prosodia-py`,
`grpcurl`) and the Node client's dependencies installed (`scripts/install-node-clients.sh`).
Both install scripts are run first unless `PROSODIA_PYTHON`/`PROSODIA_GRPCURL` and
`PROSODIA_NODE` are already set (scripts/test.sh sets them). A block that needs grpcurl, the
Python client or node when it could not be installed is skipped with the reason.

When `unshare -n` works (root, or a kernel allowing it), the blocks run in a private network
namespace, so the documented address 127.0.0.1:50051 cannot collide with another server on
the machine; otherwise the script refuses to start while something already listens there.
The release builds of the server and the CLI are made first (`--no-build` skips that), so a
block's wait for the server measures the server, not the compiler. Only the Python standard
library is used. Exit status: 0 when every block that ran passed,
1 otherwise, 2 for a usage or setup error.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NETNS_MARK = "PROSODIA_DOC_COMMANDS_NETNS"
DEFAULT_ADDR = "127.0.0.1:50051"
SHELL_LANGS = {"sh", "bash", "shell"}

# A line that starts the server: `cargo run ... -p prosodia-server ...` or the binary itself.
SERVER_RE = re.compile(
    r"""^\s*(?:[A-Z_][A-Z0-9_]*=\S*\s+)*            # optional VAR=value prefixes
        (?:cargo\s+run\b[^#&|;]*?-p\s+prosodia-server\b
         |(?:\S*/)?prosodia-server\b)
        [^#&|;]*                                    # its arguments
        (?P<bg>&)?\s*(?:\#.*)?$""",
    re.VERBOSE,
)
EXPECT_RE = re.compile(r"#\s*expect:\s*(.+?)\s*$")
STATUS_RE = re.compile(r"#\s*expect-status:\s*(\d+)\s*$")


@dataclass
class Block:
    path: Path
    line: int  # line of the opening fence
    lang: str
    flags: list[str]
    text: str
    expects: list[str] = field(default_factory=list)
    status: int = 0

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def extract_blocks(path: Path) -> list[Block]:
    """Fenced shell blocks of a Markdown file (``` or ~~~ fences, any indentation ≤ 3)."""
    blocks: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        m = re.match(r"^( {0,3})(`{3,}|~{3,})\s*(.*)$", lines[i])
        if not m:
            i += 1
            continue
        indent, fence, info = m.group(1), m.group(2), m.group(3).strip()
        start = i
        body: list[str] = []
        i += 1
        while i < len(lines):
            close = re.match(r"^ {0,3}(`{3,}|~{3,})\s*$", lines[i])
            if close and close.group(1)[0] == fence[0] and len(close.group(1)) >= len(fence):
                break
            line = lines[i]
            if indent and line.startswith(indent):
                line = line[len(indent):]
            body.append(line)
            i += 1
        i += 1
        words = info.split()
        lang = words[0].lower() if words else ""
        if lang not in SHELL_LANGS:
            continue
        text = "\n".join(body) + "\n"
        block = Block(path, start + 1, lang, [w.lower() for w in words[1:]], text)
        for line in body:
            if em := EXPECT_RE.search(line):
                block.expects.append(em.group(1))
            if sm := STATUS_RE.search(line):
                block.status = int(sm.group(1))
        blocks.append(block)
    return blocks


def listen_addr(line: str) -> str:
    m = re.search(r"(?:--listen[ =]|PROSODIA_LISTEN=)([^\s'\"]+)", line)
    return m.group(1) if m else DEFAULT_ADDR


def commands(text: str) -> list[str]:
    """The block's command lines (continuations joined, blank and comment lines dropped)."""
    out: list[str] = []
    pending = ""
    for line in text.splitlines():
        if pending:
            line = pending + " " + line.strip()
            pending = ""
        if line.rstrip().endswith("\\"):
            pending = line.rstrip()[:-1]
            continue
        if line.strip() and not line.strip().startswith("#"):
            out.append(line)
    return out


def transform(block: Block) -> tuple[str, list[str]]:
    """The block as run: server lines in the background, each followed by a wait for its port.
    Returns the script and the addresses of the servers it starts."""
    out: list[str] = []
    addrs: list[str] = []
    # A block that only starts the server in the foreground is one "run in a second terminal".
    cmds = commands(block.text)
    second_terminal = (len(cmds) == 1 and not block.expects and block.status == 0
                       and SERVER_RE.match(cmds[0]) is not None)
    lines = block.text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        # A command continued with `\` is one line for the server check.
        while line.rstrip().endswith("\\") and i < len(lines):
            line = line.rstrip()[:-1] + " " + lines[i].strip()
            i += 1
        m = SERVER_RE.match(line)
        if m and (m.group("bg") or second_terminal):
            addr = listen_addr(line)
            addrs.append(addr)
            code = re.sub(r"\s*(?:#.*)?$", "", line)
            if not m.group("bg"):
                code += " &"
            out.append(code)
            out.append(f"__doc_wait_port {shlex.quote(addr)} $!")
        else:
            out.append(line)
    return "\n".join(out) + "\n", addrs


PRELUDE = r"""
# The exported variables and working directory left by the file's previous blocks, as in one
# terminal session; saved again when this block succeeds.
if [ -f "$__DOC_STATE" ]; then . "$__DOC_STATE"; fi
trap '__doc_rc=$?; if [ "$__doc_rc" = 0 ]; then { export -p; printf "cd %q\n" "$PWD"; } >"$__DOC_STATE"; fi' EXIT
set -eo pipefail
__doc_wait_port() {  # HOST:PORT PID: wait until the port accepts connections
  local host="${1%:*}" port="${1##*:}" pid="$2" deadline=$((SECONDS + ${PROSODIA_DOC_SERVER_TIMEOUT:-900}))
  while ! (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "doc-commands: the server (pid $pid) exited before listening on $1" >&2
      return 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "doc-commands: nothing listens on $1 after ${PROSODIA_DOC_SERVER_TIMEOUT:-900} s" >&2
      return 1
    fi
    sleep 0.2
  done
  echo "doc-commands: server listening on $1" >&2
}
"""


def missing_tools(block: Block, env: dict[str, str]) -> str | None:
    """Why the block cannot run here (a tool absent), or None."""
    text = block.text
    if re.search(r"(^|[\s|(;&])grpcurl\b", text) and not shutil.which("grpcurl", path=env["PATH"]):
        return "grpcurl is not installed (scripts/install-python-clients.sh failed)"
    if re.search(r"prosodia-py\b|import prosodia|clients/python/examples", text) and not env.get(
            "PROSODIA_PYTHON"):
        return "the Python client is not installed (scripts/install-python-clients.sh failed)"
    for tool in ("nginx", "openssl", "systemd-analyze", "curl"):
        if re.search(rf"(^|[\s|(;&]){re.escape(tool)}\b", text) and not shutil.which(
                tool, path=env["PATH"] + os.pathsep + "/usr/sbin:/sbin"):
            return f"{tool} is not installed"
    if re.search(r"(^|[\s|(;&])(node|npm)\b", text):
        if not shutil.which("node", path=env["PATH"]):
            return "node is not installed"
        if not (ROOT / "clients/node/node_modules/@grpc/grpc-js/package.json").exists():
            return "the Node client's dependencies are not installed " \
                   "(scripts/install-node-clients.sh failed)"
    return None


def kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def port_free(addr: str) -> bool:
    host, _, port = addr.rpartition(":")
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, int(port))) != 0


def wait_port_free(addr: str, seconds: float = 20) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if port_free(addr):
            return True
        time.sleep(0.2)
    return False


def run_file(path: Path, blocks: list[Block], env: dict[str, str], args, counts: dict) -> None:
    groups: list[int] = []
    addrs: set[str] = set()
    failed_here = False
    state = tempfile.NamedTemporaryFile(prefix="doc-commands-state-", delete=False)
    state.close()
    os.unlink(state.name)  # no state before the first block
    env = dict(env, __DOC_STATE=state.name)
    try:
        for block in blocks:
            if "norun" in block.flags:
                counts["norun"] += 1
                print(f"SKIP {block.where} (marked norun)")
                continue
            why = missing_tools(block, env)
            if why:
                counts["missing"] += 1
                print(f"SKIP {block.where}: {why}")
                continue
            if failed_here:
                counts["after_failure"] += 1
                print(f"SKIP {block.where}: an earlier block of this file failed")
                continue
            script, started = transform(block)
            for addr in started:
                if not port_free(addr):
                    print(f"FAIL {block.where}: this block starts a server on {addr}, where "
                          "something already listens (a server from an earlier block of this "
                          "file, or another program: stop it, or run where `unshare -n` works)")
                    counts["failed"] += 1
                    failed_here = True
                    break
            if failed_here:
                continue
            addrs.update(started)
            with tempfile.TemporaryFile() as log:
                t0 = time.monotonic()
                proc = subprocess.Popen(
                    ["bash", "--noprofile", "--norc", "-c", PRELUDE + script],
                    cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log,
                    stderr=subprocess.STDOUT, start_new_session=True,
                )
                groups.append(proc.pid)
                try:
                    rc = proc.wait(timeout=args.timeout)
                except subprocess.TimeoutExpired:
                    kill_group(proc.pid)
                    rc = None
                took = time.monotonic() - t0
                time.sleep(0.05)  # let a background server's last lines land
                log.seek(0)
                output = log.read().decode("utf-8", "replace")
            problems = []
            if rc is None:
                problems.append(f"timed out after {args.timeout} s")
            elif rc != block.status:
                problems.append(f"exit status {rc}, expected {block.status}")
            for want in block.expects:
                if want not in output:
                    problems.append(f"output lacks {want!r}")
            if problems:
                counts["failed"] += 1
                failed_here = True
                print(f"FAIL {block.where} ({took:.1f} s): " + "; ".join(problems))
                print("  --- block ---")
                print("".join(f"  | {line}\n" for line in block.text.splitlines()), end="")
                print("  --- output (last 60 lines) ---")
                tail = output.splitlines()[-60:]
                print("".join(f"  > {line}\n" for line in tail), end="")
            else:
                counts["passed"] += 1
                print(f"ok   {block.where} ({took:.1f} s)")
                if args.verbose:
                    print("".join(f"  > {line}\n" for line in output.splitlines()), end="")
    finally:
        if os.path.exists(state.name):
            os.unlink(state.name)
        for pgid in groups:
            kill_group(pgid)
        for addr in addrs:
            if not wait_port_free(addr):
                print(f"warning: {addr} still in use after stopping {path.name}'s servers")


def install_env(env: dict[str, str]) -> None:
    """Runs the client install scripts (unless their variables are set) and applies their
    `export NAME=value` lines."""
    for script, needed in (("scripts/install-python-clients.sh", ("PROSODIA_PYTHON",
                                                                  "PROSODIA_GRPCURL")),
                           ("scripts/install-node-clients.sh", ("PROSODIA_NODE",))):
        if all(env.get(k) for k in needed):
            continue
        print(f"doc-commands: bash {script}", flush=True)
        res = subprocess.run(["bash", script], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                             text=True)
        if res.returncode != 0:
            print(f"doc-commands: {script} failed (status {res.returncode}); blocks that need "
                  "it will be skipped")
            continue
        for line in res.stdout.splitlines():
            words = shlex.split(line)
            if len(words) == 2 and words[0] == "export" and "=" in words[1]:
                k, v = words[1].split("=", 1)
                env[k] = v


def run_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("CARGO_TARGET_DIR", str(Path.home() / ".cache/prosodia-target"))
    env["CARGO_TERM_COLOR"] = "never"
    env.pop("PROSODIA_SERVER", None)  # the docs assume the default address
    return env


def finish_env(env: dict[str, str]) -> None:
    """PATH with the venv (python, prosodia-py, grpcurl) and grpcurl's own folder first."""
    front = []
    if env.get("PROSODIA_PYTHON"):
        front.append(str(Path(env["PROSODIA_PYTHON"]).parent))
    if env.get("PROSODIA_GRPCURL"):
        front.append(str(Path(env["PROSODIA_GRPCURL"]).parent))
    if env.get("PROSODIA_NODE"):
        front.append(str(Path(env["PROSODIA_NODE"]).parent))
    if front:
        env["PATH"] = os.pathsep.join(front + [env.get("PATH", "")])
    if env.get("PROSODIA_PYTHON"):
        env["VIRTUAL_ENV"] = str(Path(env["PROSODIA_PYTHON"]).parent.parent)


def netns_works() -> bool:
    if not shutil.which("unshare") or not shutil.which("ip"):
        return False
    try:
        res = subprocess.run(["unshare", "-n", "ip", "link", "set", "lo", "up"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return res.returncode == 0


def default_files() -> list[Path]:
    files = [ROOT / "README.md"]
    files += sorted((ROOT / "docs").glob("*.md"))
    files += sorted((ROOT / "clients").glob("*/README.md"))
    return [f for f in files if f.is_file()]


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="*", type=Path, help="Markdown files (default: all docs)")
    ap.add_argument("--list", action="store_true", help="list the blocks, run nothing")
    ap.add_argument("--timeout", type=float, default=1200, help="seconds per block (1200)")
    ap.add_argument("--no-netns", action="store_true",
                    help="run in the machine's own network namespace")
    ap.add_argument("--no-build", action="store_true",
                    help="do not build the release server and CLI before running the blocks")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every block's output")
    args = ap.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)

    files = [f.resolve() for f in args.files] if args.files else default_files()
    for f in files:
        if not f.is_file():
            print(f"doc-commands: no such file {f}", file=sys.stderr)
            return 2
    all_blocks = {f: extract_blocks(f) for f in files}

    if args.list:
        for f, blocks in all_blocks.items():
            for b in blocks:
                tag = "norun" if "norun" in b.flags else "run  "
                first = b.text.strip().splitlines()[0] if b.text.strip() else ""
                print(f"{tag} {b.where}: {first}")
        return 0

    env = run_env()
    if os.environ.get(NETNS_MARK) != "1":
        install_env(env)
        if not args.no_build:
            # The docs start the server with `cargo run --release`: build it (and the CLI the
            # docs call) first, so the blocks' waits measure the server, not the compiler.
            print("doc-commands: cargo build --release -p prosodia-server -p prosodia-cli",
                  flush=True)
            res = subprocess.run(["cargo", "build", "--release", "--locked",
                                  "-p", "prosodia-server", "-p", "prosodia-cli"],
                                 cwd=ROOT, env=env)
            if res.returncode != 0:
                print("doc-commands: the release build failed", file=sys.stderr)
                return 2
        if not args.no_netns and netns_works():
            env[NETNS_MARK] = "1"
            print("doc-commands: running in a private network namespace (unshare -n)",
                  flush=True)
            cmd = ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "sh",
                   sys.executable, str(Path(__file__).resolve()), *map(str, files),
                   "--timeout", str(args.timeout)] + (["-v"] if args.verbose else [])
            return subprocess.run(cmd, env=env).returncode
    finish_env(env)

    counts = {"passed": 0, "failed": 0, "norun": 0, "missing": 0, "after_failure": 0}
    t0 = time.monotonic()
    for f, blocks in all_blocks.items():
        if blocks:
            run_file(f, blocks, env, args, counts)
    total = sum(len(b) for b in all_blocks.values())
    print(
        f"doc-commands: {total} shell blocks in {len(files)} files: {counts['passed']} passed, "
        f"{counts['failed']} failed, {counts['norun']} skipped (marked norun), "
        f"{counts['missing']} skipped (a tool is missing), {counts['after_failure']} not run "
        f"after a failure; {time.monotonic() - t0:.0f} s"
    )
    return 1 if counts["failed"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
