/**
 * The stand-in NFS server (cli/dev/rpc-stand-in.ts) as a process of its own
 * for tests: a SIGSTOP makes it a hung server, a kill a fenced one. Every
 * execution is appended to EXEC_LOG with its time.
 *
 *   node rpc-stand-in.js PORT DELAY_MS EXEC_LOG [PIDFILE]
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import { MSG_REPLY, RecordScanner } from '../../common/oncrpc';
import { callRecord, serve } from '../../cli/dev/rpc-stand-in';

export { callRecord, replyRecord, serve } from '../../cli/dev/rpc-stand-in';

if (require.main === module) {
  const [port, delay, log, pidfile] = process.argv.slice(2);
  void serve(Number(port), Number(delay), log).then(() => {
    // Written whole, then renamed: a reader never sees an empty file (see readPid).
    if (pidfile) {
      fs.writeFileSync(`${pidfile}.tmp`, String(process.pid));
      fs.renameSync(`${pidfile}.tmp`, pidfile);
    }
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
