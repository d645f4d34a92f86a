#!/usr/bin/env python3
"""Writes docs/api.md, the API reference, from the comments in proto/prosodia/v1/*.proto.

    python3 scripts/gen-api-docs.py            # (re)write docs/api.md
    python3 scripts/gen-api-docs.py --check    # exit 1, with a diff, if docs/api.md is stale

The reference is generated, never edited by hand: every service, RPC, message, field, oneof
and enum of the protos appears with the comment written above it in the .proto file, so the
documentation cannot drift from the API. `cargo test -p prosodia-tests --test docs` runs the
check (scripts/test.sh runs it too).

Only the Python standard library is used. The parser is a small tokenizer plus a recursive
reader for the subset of proto3 that Prosodia's own files use: `syntax`, `package`, `import`,
`option` (skipped), services with rpcs (including `stream`), messages (nested messages and
enums, oneofs, `repeated`/`optional` fields, `map<K, V>`, `reserved`), and enums. A comment
belongs to the declaration it directly precedes (no blank line between them); a comment on the
same line after a field or value is appended to it. The output is deterministic: files in name
order, declarations in source order, no timestamps.
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PROTO_DIR = ROOT / "proto" / "prosodia" / "v1"
DEFAULT_OUT = ROOT / "docs" / "api.md"

SCALARS = {
    "double", "float", "int32", "int64", "uint32", "uint64", "sint32", "sint64",
    "fixed32", "fixed64", "sfixed32", "sfixed64", "bool", "string", "bytes",
}


class ProtoError(Exception):
    """A .proto file this parser does not understand; the message names file and line."""


# ---------------------------------------------------------------------------------------------
# Tokenizer


@dataclass
class Token:
    kind: str  # "ident", "int", "str", "sym"
    text: str
    line: int
    comment: list[str]  # the comment block directly above (no blank line in between)


_TOKEN_RE = re.compile(
    r"""
    (?P<ws>[ \t\r]+)
  | (?P<nl>\n)
  | (?P<line_comment>//[^\n]*)
  | (?P<block_comment>/\*.*?\*/)
  | (?P<str>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<fqident>\.[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<num>-?(?:0[xX][0-9a-fA-F]+|[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?))
  | (?P<sym>[{}()\[\]<>;=,:])
    """,
    re.VERBOSE | re.DOTALL,
)


def _comment_lines(text: str) -> list[str]:
    if text.startswith("//"):
        body = text[2:]
        return [body[1:] if body.startswith(" ") else body]
    lines = text[2:-2].split("\n")
    out = []
    for line in lines:
        line = line.strip()
        if line.startswith("*"):
            line = line[1:]
            line = line[1:] if line.startswith(" ") else line
        out.append(line)
    while out and not out[0].strip():
        out.pop(0)
    while out and not out[-1].strip():
        out.pop()
    return out


def tokenize(text: str, path: str) -> tuple[list[Token], dict[int, list[str]], list[str]]:
    """Returns the tokens, the trailing comments by line (a comment after code on a line) and
    the file's first comment block (its header, attached to a declaration or not)."""
    tokens: list[Token] = []
    header: list[str] | None = None
    trailing: dict[int, list[str]] = {}
    pending: list[str] = []  # comment block being collected
    line = 1
    blank_run = 0  # newlines since the last comment or token, to detect blank lines
    last_token_line = 0
    pos = 0
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if not m:
            raise ProtoError(f"{path}:{line}: unexpected character {text[pos]!r}")
        kind = m.lastgroup
        s = m.group()
        pos = m.end()
        if kind == "ws":
            continue
        if kind == "nl":
            line += 1
            blank_run += 1
            if blank_run >= 2 and pending:
                if header is None and not tokens:
                    header = pending
                pending = []  # a blank line detaches the comment above it
            continue
        if kind in ("line_comment", "block_comment"):
            if last_token_line == line:
                trailing.setdefault(line, []).extend(_comment_lines(s))
            else:
                pending.extend(_comment_lines(s))
            line += s.count("\n")
            blank_run = 0
            continue
        if header is None and not tokens:
            header = pending
        tokens.append(Token("ident" if kind == "fqident" else kind, s, line, pending))
        pending = []
        blank_run = 0
        last_token_line = line
    return tokens, trailing, header or []


# ---------------------------------------------------------------------------------------------
# Model


@dataclass
class Field:
    name: str
    type: str  # as written; for maps "map<K,V>"
    number: int
    label: str  # "", "repeated", "optional"
    comment: list[str]
    oneof: str | None = None
    map_types: tuple[str, str] | None = None


@dataclass
class Oneof:
    name: str
    comment: list[str]
    fields: list[str] = field(default_factory=list)


@dataclass
class EnumValue:
    name: str
    number: int
    comment: list[str]


@dataclass
class Enum:
    full_name: str
    name: str
    comment: list[str]
    file: str
    values: list[EnumValue] = field(default_factory=list)


@dataclass
class Message:
    full_name: str
    name: str  # dotted within the package, e.g. "Outer.Inner"
    comment: list[str]
    file: str
    fields: list[Field] = field(default_factory=list)
    oneofs: list[Oneof] = field(default_factory=list)


@dataclass
class Rpc:
    name: str
    request: str
    request_stream: bool
    response: str
    response_stream: bool
    comment: list[str]


@dataclass
class Service:
    full_name: str
    name: str
    comment: list[str]
    file: str
    rpcs: list[Rpc] = field(default_factory=list)


@dataclass
class ProtoFile:
    name: str
    package: str
    comment: list[str]
    imports: list[str] = field(default_factory=list)
    services: list[Service] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)  # in source order, nested after outer
    enums: list[Enum] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# Parser


class Parser:
    def __init__(self, text: str, path: str):
        self.path = path
        self.tokens, self.trailing, header = tokenize(text, path)
        self.i = 0
        self.file = ProtoFile(name=Path(path).name, package="", comment=header)

    # Token helpers.
    def peek(self, k: int = 0) -> Token | None:
        j = self.i + k
        return self.tokens[j] if j < len(self.tokens) else None

    def next(self) -> Token:
        tok = self.peek()
        if tok is None:
            raise ProtoError(f"{self.path}: unexpected end of file")
        self.i += 1
        return tok

    def error(self, tok: Token, what: str) -> ProtoError:
        return ProtoError(f"{self.path}:{tok.line}: {what}, found {tok.text!r}")

    def expect(self, text: str) -> Token:
        tok = self.next()
        if tok.text != text:
            raise self.error(tok, f"expected {text!r}")
        return tok

    def ident(self) -> Token:
        tok = self.next()
        if tok.kind != "ident":
            raise self.error(tok, "expected a name")
        return tok

    def integer(self) -> int:
        tok = self.next()
        try:
            return int(tok.text, 0)
        except ValueError:
            raise self.error(tok, "expected an integer") from None

    def skip_statement(self) -> None:
        """Skips to the end of a `;`-terminated statement (options, reserved, extensions)."""
        depth = 0
        while True:
            tok = self.next()
            if tok.text in ("(", "[", "{", "<"):
                depth += 1
            elif tok.text in (")", "]", "}", ">"):
                depth -= 1
            elif tok.text == ";" and depth == 0:
                return

    def skip_field_options(self) -> None:
        if self.peek() and self.peek().text == "[":
            depth = 0
            while True:
                tok = self.next()
                if tok.text == "[":
                    depth += 1
                elif tok.text == "]":
                    depth -= 1
                    if depth == 0:
                        return

    def comment_for(self, first: Token, last_line: int) -> list[str]:
        return list(first.comment) + self.trailing.get(last_line, [])

    # Grammar.
    def parse(self) -> ProtoFile:
        while self.peek() is not None:
            tok = self.peek()
            if tok.text == "syntax":
                self.next()
                self.expect("=")
                value = self.next()
                if value.text.strip("\"'") != "proto3":
                    raise self.error(value, "only proto3 is supported")
                self.expect(";")
            elif tok.text == "package":
                self.next()
                self.file.package = self.ident().text
                self.expect(";")
            elif tok.text == "import":
                self.next()
                if self.peek().text in ("public", "weak"):
                    self.next()
                path = self.next()
                if path.kind != "str":
                    raise self.error(path, "expected an import path")
                self.file.imports.append(path.text[1:-1])
                self.expect(";")
            elif tok.text == "option":
                self.skip_statement()
            elif tok.text == "service":
                self.parse_service()
            elif tok.text == "message":
                self.parse_message(scope="")
            elif tok.text == "enum":
                self.parse_enum(scope="")
            elif tok.text == ";":
                self.next()
            else:
                raise self.error(tok, "expected a top-level declaration")
        if not self.file.package:
            raise ProtoError(f"{self.path}: no package statement")
        return self.file

    def full(self, scope: str, name: str) -> str:
        inner = f"{scope}.{name}" if scope else name
        return f"{self.file.package}.{inner}"

    def parse_service(self) -> None:
        kw = self.next()
        name = self.ident().text
        service = Service(
            full_name=self.full("", name), name=name, comment=list(kw.comment), file=self.file.name
        )
        self.expect("{")
        while self.peek().text != "}":
            tok = self.peek()
            if tok.text == "rpc":
                self.next()
                rpc_name = self.ident().text
                self.expect("(")
                req_stream = self.peek().text == "stream" and self.peek(1).text != ")"
                if req_stream:
                    self.next()
                request = self.ident().text
                self.expect(")")
                self.expect("returns")
                self.expect("(")
                resp_stream = self.peek().text == "stream" and self.peek(1).text != ")"
                if resp_stream:
                    self.next()
                response = self.ident().text
                end = self.expect(")")
                if self.peek().text == "{":
                    self.next()
                    while self.peek().text != "}":
                        self.skip_statement()
                    end = self.expect("}")
                    if self.peek() and self.peek().text == ";":
                        self.next()
                else:
                    end = self.expect(";")
                service.rpcs.append(
                    Rpc(rpc_name, request, req_stream, response, resp_stream,
                        self.comment_for(tok, end.line))
                )
            elif tok.text == "option":
                self.skip_statement()
            elif tok.text == ";":
                self.next()
            else:
                raise self.error(tok, "expected `rpc` in a service")
        self.expect("}")
        self.file.services.append(service)

    def parse_enum(self, scope: str) -> None:
        kw = self.next()
        name = self.ident().text
        inner = f"{scope}.{name}" if scope else name
        enum = Enum(full_name=self.full(scope, name), name=inner, comment=list(kw.comment),
                    file=self.file.name)
        self.expect("{")
        while self.peek().text != "}":
            tok = self.peek()
            if tok.text in ("option", "reserved"):
                self.skip_statement()
            elif tok.text == ";":
                self.next()
            else:
                value_name = self.ident().text
                self.expect("=")
                number = self.integer()
                self.skip_field_options()
                end = self.expect(";")
                enum.values.append(EnumValue(value_name, number, self.comment_for(tok, end.line)))
        self.expect("}")
        self.file.enums.append(enum)

    def parse_field(self, msg: Message, oneof: Oneof | None) -> None:
        first = self.peek()
        label = ""
        if first.text in ("repeated", "optional") and self.peek(1).kind == "ident" \
                and self.peek(2).text not in ("=",):
            label = self.next().text
        map_types = None
        if self.peek().text == "map" and self.peek(1).text == "<":
            self.next()
            self.expect("<")
            key = self.ident().text
            self.expect(",")
            value = self.ident().text
            self.expect(">")
            type_name = f"map<{key}, {value}>"
            map_types = (key, value)
        else:
            type_name = self.ident().text
        name = self.ident().text
        self.expect("=")
        number = self.integer()
        self.skip_field_options()
        end = self.expect(";")
        f = Field(name, type_name, number, label, self.comment_for(first, end.line),
                  oneof.name if oneof else None, map_types)
        msg.fields.append(f)
        if oneof:
            oneof.fields.append(name)

    def parse_message(self, scope: str) -> None:
        kw = self.next()
        name = self.ident().text
        inner = f"{scope}.{name}" if scope else name
        msg = Message(full_name=self.full(scope, name), name=inner, comment=list(kw.comment),
                      file=self.file.name)
        # Register before nested ones so the file lists outer messages first.
        self.file.messages.append(msg)
        self.expect("{")
        while self.peek().text != "}":
            tok = self.peek()
            if tok.text == "message" and self.peek(1).kind == "ident" and self.peek(2).text == "{":
                self.parse_message(inner)
            elif tok.text == "enum" and self.peek(1).kind == "ident" and self.peek(2).text == "{":
                self.parse_enum(inner)
            elif tok.text == "oneof" and self.peek(2) and self.peek(2).text == "{":
                self.next()
                oneof = Oneof(self.ident().text, list(tok.comment))
                self.expect("{")
                while self.peek().text != "}":
                    if self.peek().text == "option":
                        self.skip_statement()
                    elif self.peek().text == ";":
                        self.next()
                    else:
                        self.parse_field(msg, oneof)
                self.expect("}")
                msg.oneofs.append(oneof)
            elif tok.text in ("option", "reserved", "extensions"):
                self.skip_statement()
            elif tok.text == ";":
                self.next()
            else:
                self.parse_field(msg, None)
        self.expect("}")


def parse_file(path: Path) -> ProtoFile:
    return Parser(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)
                                                      if path.is_relative_to(ROOT) else path)
                  ).parse()


# ---------------------------------------------------------------------------------------------
# Rendering


def anchor(full_name: str) -> str:
    return full_name


class Renderer:
    def __init__(self, files: list[ProtoFile]):
        self.files = files
        self.types: dict[str, str] = {}  # full name -> "message" | "enum"
        for f in files:
            for m in f.messages:
                self.types[m.full_name] = "message"
            for e in f.enums:
                self.types[e.full_name] = "enum"
        self.unresolved: list[str] = []

    def resolve(self, name: str, scope: str) -> str | None:
        """Finds `name` as protoc would from within `scope` (a full message or package name)."""
        if name.startswith("."):
            return name[1:] if name[1:] in self.types else None
        parts = scope.split(".") if scope else []
        while True:
            candidate = ".".join(parts + [name])
            if candidate in self.types:
                return candidate
            if not parts:
                return None
            parts.pop()

    def type_ref(self, name: str, scope: str, where: str) -> str:
        if name in SCALARS:
            return f"`{name}`"
        full = self.resolve(name, scope)
        if full is None:
            if not name.lstrip(".").startswith("google.protobuf."):
                self.unresolved.append(f"{where}: unknown type {name}")
            return f"`{name}`"
        short = full.split(".", 2)[-1] if full.count(".") >= 2 else full
        # Show the name as written relative to the package (e.g. Outer.Inner).
        for f in self.files:
            if full.startswith(f.package + "."):
                short = full[len(f.package) + 1:]
                break
        return f"[`{short}`](#{anchor(full)})"

    def field_type(self, f: Field, msg: Message) -> str:
        where = f"{msg.full_name}.{f.name}"
        if f.map_types:
            k, v = f.map_types
            return f"map<`{k}`, {self.type_ref(v, msg.full_name, where)}>"
        t = self.type_ref(f.type, msg.full_name, where)
        return f"{f.label} {t}" if f.label else t


def paragraph(lines: list[str]) -> str:
    """A comment as Markdown text (its blank lines kept as paragraph breaks)."""
    out = "\n".join(line.rstrip() for line in lines).strip()
    return re.sub(r"\n{3,}", "\n\n", out)


def cell(lines: list[str]) -> str:
    """A comment as one table cell: paragraphs joined by <br>, pipes escaped."""
    paras = [" ".join(p.split()) for p in paragraph(lines).split("\n\n")]
    return "<br>".join(p for p in paras if p).replace("|", "\\|")


def first_sentence(lines: list[str]) -> str:
    text = " ".join(paragraph(lines).split("\n\n")[0].split())
    m = re.match(r"(.+?\.)(\s|$)", text)
    return (m.group(1) if m else text).replace("|", "\\|")


def render(files: list[ProtoFile], proto_rel: str) -> str:
    r = Renderer(files)
    out: list[str] = []
    w = out.append
    w("# API reference")
    w("")
    w("<!-- Generated by scripts/gen-api-docs.py from proto/prosodia/v1/*.proto: do not edit. -->")
    w("")
    w(f"Every service, RPC, message, field and enum of the `{files[0].package if files else ''}` "
      f"gRPC API, from the comments in `{proto_rel}/*.proto`. This page is generated, never "
      "edited by hand: after changing a `.proto` file (or merging a branch that did), run "
      "`python3 scripts/gen-api-docs.py` and commit the result. The check below (also run by "
      "`cargo test -p prosodia-tests --test docs`) fails while this file is out of date:")
    w("")
    w("```sh")
    w("python3 scripts/gen-api-docs.py --check   # expect: is up to date")
    w("```")
    w("")
    w("Field names are the proto names; the JSON forms used by grpcurl are their lowerCamelCase "
      "versions (`model_version` is `modelVersion`). Every field of a proto3 message is "
      "optional on the wire: an unset scalar reads as 0, empty or false, an unset message as "
      "absent.")
    w("")
    w("Beside these services the server answers the standard gRPC health service "
      "`grpc.health.v1.Health` (service `\"\"` for the whole server, `prosodia.v1.Emotion`, "
      "`prosodia.v1.Models`, and `prosodia.v1.Model/<name>` per model, SERVING while a version "
      "of it is ready) and server reflection (v1 and v1alpha), which grpcurl uses to list and "
      "describe the services. Error codes are explained in [errors.md](errors.md).")
    w("")

    # Index.
    w("## Contents")
    w("")
    for f in files:
        w(f"- `{f.name}`")
        for s in f.services:
            w(f"  - service [`{s.name}`](#{anchor(s.full_name)}): "
              + ", ".join(f"[`{rpc.name}`](#{anchor(s.full_name + '.' + rpc.name)})"
                          for rpc in s.rpcs))
        if f.messages:
            w("  - messages: " + ", ".join(f"[`{m.name}`](#{anchor(m.full_name)})"
                                          for m in f.messages))
        if f.enums:
            w("  - enums: " + ", ".join(f"[`{e.name}`](#{anchor(e.full_name)})" for e in f.enums))
    w("")

    for f in files:
        w(f"## {f.name}")
        w("")
        w(f"`{proto_rel}/{f.name}`, package `{f.package}`"
          + (". Imports " + ", ".join(f"`{i}`" for i in f.imports) if f.imports else "") + ".")
        w("")
        if f.comment:
            w(paragraph(f.comment))
            w("")
        for s in f.services:
            w(f'<a id="{anchor(s.full_name)}"></a>')
            w("")
            w(f"### service {s.name}")
            w("")
            w(f"`{s.full_name}`")
            w("")
            if s.comment:
                w(paragraph(s.comment))
                w("")
            w("| RPC | request | response | summary |")
            w("| --- | --- | --- | --- |")
            for rpc in s.rpcs:
                req = ("stream " if rpc.request_stream else "") + r.type_ref(
                    rpc.request, s.full_name, f"{s.full_name}.{rpc.name}")
                resp = ("stream " if rpc.response_stream else "") + r.type_ref(
                    rpc.response, s.full_name, f"{s.full_name}.{rpc.name}")
                w(f"| [`{rpc.name}`](#{anchor(s.full_name + '.' + rpc.name)}) | {req} | {resp} "
                  f"| {first_sentence(rpc.comment)} |")
            w("")
            for rpc in s.rpcs:
                w(f'<a id="{anchor(s.full_name + "." + rpc.name)}"></a>')
                w("")
                w(f"#### {s.name}.{rpc.name}")
                w("")
                kind = {
                    (False, False): "unary",
                    (True, False): "client streaming",
                    (False, True): "server streaming",
                    (True, True): "bidirectional streaming",
                }[(rpc.request_stream, rpc.response_stream)]
                req = ("stream of " if rpc.request_stream else "") + r.type_ref(
                    rpc.request, s.full_name, f"{s.full_name}.{rpc.name}")
                resp = ("stream of " if rpc.response_stream else "") + r.type_ref(
                    rpc.response, s.full_name, f"{s.full_name}.{rpc.name}")
                w(f"`/{s.full_name}/{rpc.name}`, {kind}. Request: {req}. Response: {resp}.")
                w("")
                if rpc.comment:
                    w(paragraph(rpc.comment))
                    w("")
        for m in f.messages:
            w(f'<a id="{anchor(m.full_name)}"></a>')
            w("")
            w(f"### {m.name}")
            w("")
            w(f"message `{m.full_name}`")
            w("")
            if m.comment:
                w(paragraph(m.comment))
                w("")
            if m.fields:
                w("| field | type | number | description |")
                w("| --- | --- | ---: | --- |")
                for fl in m.fields:
                    desc = cell(fl.comment)
                    if fl.oneof:
                        desc = f"*oneof `{fl.oneof}`.* " + desc
                    w(f"| `{fl.name}` | {r.field_type(fl, m)} | {fl.number} | {desc} |")
                w("")
            else:
                w("No fields.")
                w("")
            for o in m.oneofs:
                members = ", ".join(f"`{n}`" for n in o.fields)
                text = " ".join(paragraph(o.comment).split()) if o.comment else ""
                w(f"oneof `{o.name}` (at most one of {members})" + (f": {text}" if text else "."))
                w("")
        for e in f.enums:
            w(f'<a id="{anchor(e.full_name)}"></a>')
            w("")
            w(f"### {e.name}")
            w("")
            w(f"enum `{e.full_name}`")
            w("")
            if e.comment:
                w(paragraph(e.comment))
                w("")
            w("| value | number | description |")
            w("| --- | ---: | --- |")
            for v in e.values:
                w(f"| `{v.name}` | {v.number} | {cell(v.comment)} |")
            w("")
    if r.unresolved:
        raise ProtoError("unresolved types:\n  " + "\n  ".join(r.unresolved))
    return "\n".join(out).rstrip("\n") + "\n"


def generate(proto_dir: Path) -> str:
    paths = sorted(proto_dir.glob("*.proto"), key=lambda p: p.name)
    if not paths:
        raise ProtoError(f"no .proto files in {proto_dir}")
    files = [parse_file(p) for p in paths]
    try:
        rel = proto_dir.resolve().relative_to(ROOT).as_posix()
    except ValueError:
        rel = proto_dir.as_posix()
    return render(files, rel)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true",
                    help="do not write; exit 1 with a diff if the output file is stale")
    ap.add_argument("--proto-dir", type=Path, default=DEFAULT_PROTO_DIR,
                    help="folder of .proto files (default: proto/prosodia/v1)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT,
                    help="Markdown file to write or check (default: docs/api.md)")
    args = ap.parse_args(argv)
    try:
        text = generate(args.proto_dir)
    except (ProtoError, OSError) as e:
        print(f"gen-api-docs: {e}", file=sys.stderr)
        return 2
    try:
        current = args.out.read_text(encoding="utf-8")
    except FileNotFoundError:
        current = None
    if args.check:
        if current == text:
            print(f"gen-api-docs: {args.out} is up to date")
            return 0
        print(f"gen-api-docs: {args.out} is stale; run `python3 scripts/gen-api-docs.py` "
              "and commit the result", file=sys.stderr)
        diff = difflib.unified_diff(
            (current or "").splitlines(keepends=True), text.splitlines(keepends=True),
            fromfile=f"{args.out} (committed)", tofile=f"{args.out} (from the protos)")
        sys.stdout.writelines(diff)
        return 1
    if current != text:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")
        print(f"gen-api-docs: wrote {args.out}")
    else:
        print(f"gen-api-docs: {args.out} unchanged")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
