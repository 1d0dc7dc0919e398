/**
 * A stand-in NFS server for tests that speaks ONC RPC record marking: every
 * call record gets an accepted, successful reply (NULL-shaped) after a fixed
 * delay, and each execution is appended to a log with its time, so a test
 * can see when the server ran what. SIGSTOP makes it a hung server.
 *
 *   node rpc-stand-in.js PORT DELAY_MS EXEC_LOG [PIDFILE]
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import { MSG_CALL, MSG_REPLY, RecordScanner } from '../../common/oncrpc';

export function replyRecord(xid: number): Buffer {
  const b = Buffer.alloc(28);
  b.writeUInt32BE((0x80000000 | 24) >>> 0, 0);
  b.writeUInt32BE(xid >>> 0, 4);
  b.writeUInt32BE(MSG_REPLY, 8);
  // accepted (0), verifier AUTH_NONE (0, 0), SUCCESS (0)
  return b;
}

export function callRecord(xid: number, payloadBytes = 64): Buffer {
  const body = Buffer.alloc(Math.max(40, 40 + payloadBytes));
  body.writeUInt32BE(xid >>> 0, 0);
  body.writeUInt32BE(MSG_CALL, 4);
  body.writeUInt32BE(2, 8);
  body.writeUInt32BE(100003, 12);
  body.writeUInt32BE(3, 16);
  body.writeUInt32BE(7, 20); // WRITE
  const mark = Buffer.alloc(4);
  mark.writeUInt32BE((0x80000000 | body.length) >>> 0, 0);
  return Buffer.concat([mark, body]);
}

function monotonicMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

export function serve(port: number, delayMs: number, execLog: string): Promise<net.Server> {
  const fd = fs.openSync(execLog, 'a');
  const server = net.createServer((s) => {
    s.setNoDelay(true);
    s.on('error', () => undefined);
    const peer = `${s.remoteAddress}:${s.remotePort}`;
    const scanner = new RecordScanner((xid, type, head) => {
      if (type !== MSG_CALL) return;
      // NULL (procedure 0) is the health probe: answered at once, not logged.
      const procedure = head.length >= 24 ? head.readUInt32BE(20) : -1;
      if (procedure === 0) return void s.write(replyRecord(xid));
      const run = () => {
        fs.writeSync(fd, JSON.stringify({ t: monotonicMs(), xid, peer }) + '\n');
        if (!s.destroyed) s.write(replyRecord(xid));
      };
      if (delayMs > 0) setTimeout(run, delayMs);
      else run();
    }, 24);
    s.on('data', (chunk) => scanner.push(chunk));
  });
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve(server)));
}

if (require.main === module) {
  const [port, delay, log, pidfile] = process.argv.slice(2);
  void serve(Number(port), Number(delay), log).then(() => {
    if (pidfile) fs.writeFileSync(pidfile, String(process.pid));
    process.stdout.write(`listening ${port}\n`);
  });
}

/** A client of the stand-in server through a gate, bound to a source address (a loopback alias stands in for a host). */
export class RpcTestClient {
  readonly socket: net.Socket;
  private nextXid: number;
  readonly replied = new Set<number>();
  readonly sent: number[] = [];
  closed = false;
  connected: Promise<void>;

  constructor(sourceIp: string, port: number, firstXid = 1) {
    this.nextXid = firstXid;
    this.socket = net.connect({ host: '127.0.0.1', port, localAddress: sourceIp });
    this.connected = new Promise((resolve) => this.socket.once('connect', () => resolve()));
    const scanner = new RecordScanner((xid, type) => { if (type === MSG_REPLY) this.replied.add(xid); });
    this.socket.on('data', (d) => scanner.push(d));
    this.socket.on('close', () => { this.closed = true; });
    this.socket.on('error', () => undefined);
  }

  /** Sends `n` calls at once; returns their XIDs. */
  send(n: number, payloadBytes = 64): number[] {
    const xids = Array.from({ length: n }, () => this.nextXid++);
    this.socket.write(Buffer.concat(xids.map((x) => callRecord(x, payloadBytes))));
    this.sent.push(...xids);
    return xids;
  }

  /** Sends one call and waits for its reply: proves the gate admitted the client and forwards. */
  async roundTrip(timeoutMs = 15_000): Promise<void> {
    const [xid] = this.send(1);
    const deadline = Date.now() + timeoutMs;
    while (!this.replied.has(xid)) {
      if (this.closed) throw new Error(`connection closed before the reply to call ${xid}`);
      if (Date.now() > deadline) throw new Error(`no reply to call ${xid} within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  close(): void {
    this.socket.destroy();
  }
}
