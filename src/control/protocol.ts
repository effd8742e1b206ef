/**
 * The control protocol: newline-delimited JSON over a unix socket. A request is an object
 * `{"id": any, "op": "port.dump", "args": {...}}` or a list of them (a batch: one reply per request,
 * in order, each a result or an error; a failing request does not stop the others). A reply is
 * `{"id": ..., "result": ...}` or `{"id": ..., "error": {"code": "EINVAL", "message": "..."}}`.
 * Requests larger than MAX_REQUEST_BYTES (64 MiB: room for 100k flows in one batch) are refused and
 * the connection closed.
 */
export const MAX_REQUEST_BYTES = 64 << 20;

export interface Request {
  id?: unknown;
  op: string;
  args?: Record<string, unknown>;
}

export interface Reply {
  id?: unknown;
  result?: unknown;
  error?: { code: string; message: string };
}

export class ControlError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}
