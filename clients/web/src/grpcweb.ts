// gRPC-Web unary calls over fetch, written out here (no generated client): the request is
// one length-prefixed message frame; the response body holds message frames and a final
// trailers frame (flag 0x80) whose text carries grpc-status and grpc-message. A server that
// fails before sending a message answers "trailers-only", with the status in the headers.

/** gRPC status code names, by number. */
export const CODE_NAMES = [
  "OK",
  "CANCELLED",
  "UNKNOWN",
  "INVALID_ARGUMENT",
  "DEADLINE_EXCEEDED",
  "NOT_FOUND",
  "ALREADY_EXISTS",
  "PERMISSION_DENIED",
  "RESOURCE_EXHAUSTED",
  "FAILED_PRECONDITION",
  "ABORTED",
  "OUT_OF_RANGE",
  "UNIMPLEMENTED",
  "INTERNAL",
  "UNAVAILABLE",
  "DATA_LOSS",
  "UNAUTHENTICATED",
];

const UNKNOWN = 2;
const UNAVAILABLE = 14;

/** A call that ended with a non-OK status. */
export class GrpcError extends Error {
  constructor(
    readonly code: number,
    readonly detail: string,
  ) {
    super(`${CODE_NAMES[code] ?? `code ${code}`}: ${detail}`);
    this.name = "GrpcError";
  }

  get codeName(): string {
    return CODE_NAMES[this.code] ?? `code ${this.code}`;
  }
}

const DATA_FRAME = 0x00;
const TRAILERS_FRAME = 0x80;

/** One message as a gRPC-Web frame: flag byte, 4-byte big-endian length, message. */
export function frame(message: Uint8Array): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(5 + message.length);
  const view = new DataView(out.buffer);
  view.setUint8(0, DATA_FRAME);
  view.setUint32(1, message.length, false);
  out.set(message, 5);
  return out;
}

/** `grpc-message` is percent-encoded; a malformed escape is shown as sent. */
function decodeMessage(raw: string | null | undefined): string {
  if (!raw) return "";
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}

/** Parses the trailers frame's `key: value\r\n` lines (keys lower-cased). */
export function parseTrailers(bytes: Uint8Array): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of new TextDecoder().decode(bytes).split(/\r?\n/)) {
    const i = line.indexOf(":");
    if (i > 0) out.set(line.slice(0, i).trim().toLowerCase(), line.slice(i + 1).trim());
  }
  return out;
}

/** Splits a response body into its message frames and its trailers. */
export function parseFrames(body: Uint8Array): { messages: Uint8Array[]; trailers: Map<string, string> | null } {
  const messages: Uint8Array[] = [];
  let trailers: Map<string, string> | null = null;
  let pos = 0;
  while (pos < body.length) {
    if (pos + 5 > body.length) throw new GrpcError(UNKNOWN, "truncated gRPC-Web frame header");
    const view = new DataView(body.buffer, body.byteOffset + pos, 5);
    const flag = view.getUint8(0);
    const len = view.getUint32(1, false);
    const start = pos + 5;
    if (start + len > body.length) throw new GrpcError(UNKNOWN, "truncated gRPC-Web frame");
    const payload = body.subarray(start, start + len);
    if (flag & TRAILERS_FRAME) trailers = parseTrailers(payload);
    else if (flag === DATA_FRAME) messages.push(payload);
    else throw new GrpcError(UNKNOWN, `unsupported gRPC-Web frame flag 0x${flag.toString(16)}`);
    pos = start + len;
  }
  return { messages, trailers };
}

function statusFrom(code: string | null | undefined, message: string | null | undefined): GrpcError | null {
  if (code === null || code === undefined) return null;
  const n = Number.parseInt(code, 10);
  if (n === 0) return null;
  return new GrpcError(Number.isFinite(n) ? n : UNKNOWN, decodeMessage(message) || "(no message)");
}

/** Calls `/<service>/<method>` with one request message; resolves with the response message. */
export async function unary(path: string, request: Uint8Array, signal?: AbortSignal): Promise<Uint8Array> {
  let resp: Response;
  try {
    resp = await fetch(path, {
      method: "POST",
      headers: {
        "content-type": "application/grpc-web+proto",
        accept: "application/grpc-web+proto",
        "x-grpc-web": "1",
      },
      body: frame(request),
      signal,
    });
  } catch (e) {
    throw new GrpcError(UNAVAILABLE, `cannot reach the server: ${(e as Error).message}`);
  }
  // A trailers-only answer (an error before any message) has its status in the headers.
  const early = statusFrom(resp.headers.get("grpc-status"), resp.headers.get("grpc-message"));
  if (early) throw early;
  if (!resp.ok) throw new GrpcError(UNKNOWN, `HTTP ${resp.status} ${resp.statusText}`.trim());
  const { messages, trailers } = parseFrames(new Uint8Array(await resp.arrayBuffer()));
  const status = trailers ?? new Map<string, string>();
  const failed = statusFrom(status.get("grpc-status") ?? resp.headers.get("grpc-status"), status.get("grpc-message"));
  if (failed) throw failed;
  if (!status.has("grpc-status") && !resp.headers.has("grpc-status")) {
    throw new GrpcError(UNKNOWN, "the response ended without a gRPC status");
  }
  if (messages.length !== 1) {
    throw new GrpcError(UNKNOWN, `expected one response message, got ${messages.length}`);
  }
  return messages[0];
}
