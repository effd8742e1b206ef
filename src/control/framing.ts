/**
 * Newline framing for the control socket, on bytes: a chunk is searched for '\n' once, and pending
 * bytes are joined only when a line completes, so reading a request or reply of n bytes costs O(n)
 * (searching the whole buffered text on every chunk made a 14 MB batch cost seconds). The size limit
 * is in bytes, as documented for the protocol.
 */
export class LineReader {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private readonly maxLineBytes: number;
  private readonly onLine: (line: Buffer) => void;
  private readonly onOverflow: () => void;
  private overflowed = false;

  constructor(maxLineBytes: number, onLine: (line: Buffer) => void, onOverflow: () => void) {
    this.maxLineBytes = maxLineBytes;
    this.onLine = onLine;
    this.onOverflow = onOverflow;
  }

  push(chunk: Buffer): void {
    if (this.overflowed) return;
    let start = 0;
    for (;;) {
      const newline = chunk.indexOf(10, start);
      if (newline < 0) break;
      const tail = chunk.subarray(start, newline);
      const line = this.pending.length === 0 ? tail : Buffer.concat([...this.pending, tail], this.pendingBytes + tail.length);
      this.pending = [];
      this.pendingBytes = 0;
      start = newline + 1;
      if (line.length > this.maxLineBytes) return this.overflow();
      this.onLine(line);
    }
    if (start < chunk.length) {
      this.pending.push(chunk.subarray(start));
      this.pendingBytes += chunk.length - start;
      if (this.pendingBytes > this.maxLineBytes) this.overflow();
    }
  }

  private overflow(): void {
    this.overflowed = true;
    this.pending = [];
    this.pendingBytes = 0;
    this.onOverflow();
  }
}
