import * as fs from 'node:fs';
import { StringDecoder } from 'node:string_decoder';

/** One JSON log line of a cluster process (pino: `time` ISO, `c` component, `ev` event). */
export interface LogEvent {
  /** Date.parse of the line's `time`. */
  t: number;
  /** Which process wrote it: master, follower-1, gate-2, … */
  src: string;
  ev: string;
  [field: string]: unknown;
}

interface Tailed {
  src: string;
  file: string;
  fd?: number;
  pos: number;
  partial: string;
  decoder: StringDecoder;
}

/**
 * Follows the log files of the cluster's processes (they write their own
 * files, so the logs outlive this process) and hands on every event line.
 * Polls: files on tmpfs or overlayfs do not reliably wake fs.watch.
 */
export class LogTail {
  private readonly files: Tailed[] = [];
  private readonly timer: NodeJS.Timeout;
  private readonly buf = Buffer.alloc(64 * 1024);

  constructor(private readonly onEvent: (e: LogEvent) => void, everyMs = 50) {
    this.timer = setInterval(() => this.poll(), everyMs);
  }

  add(src: string, file: string): void {
    this.files.push({ src, file, pos: 0, partial: '', decoder: new StringDecoder('utf8') });
  }

  /** Reads what was appended since the last poll. */
  poll(): void {
    for (const f of this.files) {
      if (f.fd === undefined) {
        try {
          f.fd = fs.openSync(f.file, 'r');
        } catch {
          continue; // not created yet
        }
      }
      for (;;) {
        const n = fs.readSync(f.fd, this.buf, 0, this.buf.length, f.pos);
        if (n <= 0) break;
        f.pos += n;
        const lines = (f.partial + f.decoder.write(this.buf.subarray(0, n))).split('\n');
        f.partial = lines.pop() ?? '';
        for (const line of lines) this.parse(f.src, line);
      }
    }
  }

  private parse(src: string, line: string): void {
    if (!line.startsWith('{')) return;
    let o: Record<string, unknown>;
    try {
      o = JSON.parse(line);
    } catch {
      return;
    }
    if (typeof o.ev !== 'string' || typeof o.time !== 'string') return;
    this.onEvent({ ...o, t: Date.parse(o.time), src, ev: o.ev });
  }

  stop(): void {
    clearInterval(this.timer);
    for (const f of this.files) if (f.fd !== undefined) fs.closeSync(f.fd);
  }
}
