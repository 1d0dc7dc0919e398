/**
 * Just enough ONC RPC (RFC 5531) over TCP for nfsha: record marking, the XID
 * and message type at the head of every record, and the NULL procedure used
 * as a health probe. The gate uses RecordScanner to know which calls it
 * forwarded still lack a reply (DESIGN §4, "Requests, not only connections").
 */

export const MSG_CALL = 0;
export const MSG_REPLY = 1;

export const NFS_PROGRAM = 100003;
export const MOUNT_PROGRAM = 100005;

/**
 * Scans one direction of an ONC RPC TCP stream chunk by chunk, without
 * copying it. Each fragment starts with a 4-byte mark (top bit: last
 * fragment of its record; low 31 bits: length); a record's first 8 bytes are
 * its XID and message type. `onRecord` fires once per record, when the
 * record's last byte has been seen: a server executes a call only once the
 * whole record arrived, so a record is "forwarded" only when complete.
 */
export class RecordScanner {
  /** Bytes of the current fragment mark seen so far (0–3). */
  private markBytes = 0;
  private mark = 0;
  /** Body bytes left in the current fragment. */
  private fragmentLeft = 0;
  private lastFragment = false;
  /** The first bytes of the current record, as they arrive. */
  private readonly head: Buffer;
  private headBytes = 0;
  /** A malformed stream (a zero-length non-final fragment is fine; a huge one is not) stops the scan. */
  private broken = false;

  constructor(
    private readonly onRecord: (xid: number, msgType: number, head: Buffer) => void,
    /** Bytes of each record's head handed to onRecord (at least 8: XID and message type). */
    headSize = 8,
    /** Largest fragment accepted; larger means this is not ONC RPC. */
    private readonly maxFragment = 64 * 1024 * 1024,
  ) {
    this.head = Buffer.alloc(Math.max(8, headSize));
  }

  /** True once the stream could not be parsed as ONC RPC record marking. */
  get malformed(): boolean {
    return this.broken;
  }

  /** True when the scanner sits at a record boundary (no partial record seen). */
  get atBoundary(): boolean {
    return this.markBytes === 0 && this.fragmentLeft === 0 && this.headBytes === 0 && !this.broken;
  }

  push(chunk: Buffer): void {
    let i = 0;
    const n = chunk.length;
    while (i < n && !this.broken) {
      if (this.fragmentLeft === 0 && this.markBytes < 4) {
        this.mark = (this.mark << 8) | chunk[i++];
        if (++this.markBytes < 4) continue;
        const word = this.mark >>> 0;
        this.markBytes = 0;
        this.mark = 0;
        this.lastFragment = (word & 0x80000000) !== 0;
        this.fragmentLeft = word & 0x7fffffff;
        if (this.fragmentLeft > this.maxFragment) {
          this.broken = true;
          return;
        }
        if (this.fragmentLeft === 0 && this.lastFragment) this.endRecord();
        continue;
      }
      const take = Math.min(this.fragmentLeft, n - i);
      if (this.headBytes < this.head.length) {
        const h = Math.min(this.head.length - this.headBytes, take);
        chunk.copy(this.head, this.headBytes, i, i + h);
        this.headBytes += h;
      }
      i += take;
      this.fragmentLeft -= take;
      if (this.fragmentLeft === 0 && this.lastFragment) this.endRecord();
    }
  }

  private endRecord(): void {
    if (this.headBytes >= 8) this.onRecord(this.head.readUInt32BE(0), this.head.readUInt32BE(4), this.head.subarray(0, this.headBytes));
    this.headBytes = 0;
    this.lastFragment = false;
  }
}

/** One complete call record for `program`/`version`, procedure 0 (NULL), AUTH_NONE. */
export function nullCallRecord(xid: number, program: number, version: number): Buffer {
  const body = Buffer.alloc(40);
  body.writeUInt32BE(xid >>> 0, 0);
  body.writeUInt32BE(MSG_CALL, 4);
  body.writeUInt32BE(2, 8); // RPC version 2
  body.writeUInt32BE(program, 12);
  body.writeUInt32BE(version, 16);
  body.writeUInt32BE(0, 20); // procedure NULL
  // credential and verifier: AUTH_NONE, zero length (bytes 24–39 stay zero)
  const mark = Buffer.alloc(4);
  mark.writeUInt32BE((0x80000000 | body.length) >>> 0, 0);
  return Buffer.concat([mark, body]);
}

export type ReplyVerdict = 'accepted' | 'denied' | 'error';

/**
 * Reads a reply record's body (after the fragment mark): accepted with
 * SUCCESS, denied, or an accepted-but-failed status (program unavailable…).
 */
export function replyVerdict(body: Buffer): { xid: number; verdict: ReplyVerdict } | undefined {
  if (body.length < 12 || body.readUInt32BE(4) !== MSG_REPLY) return undefined;
  const xid = body.readUInt32BE(0);
  if (body.readUInt32BE(8) !== 0) return { xid, verdict: 'denied' };
  // accepted: verifier (flavor, length, bytes), then accept_stat
  if (body.length < 20) return undefined;
  const verfLen = body.readUInt32BE(16);
  const at = 20 + ((verfLen + 3) & ~3);
  if (body.length < at + 4) return undefined;
  return { xid, verdict: body.readUInt32BE(at) === 0 ? 'accepted' : 'error' };
}
