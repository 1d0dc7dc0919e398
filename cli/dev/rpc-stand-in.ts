/**
 * A stand-in NFS server that speaks ONC RPC record marking: every call record
 * gets an accepted, successful reply (NULL-shaped) after a fixed delay, so a
 * gate in front of it sees calls in flight and drains them as it would with
 * a real NFS server. `nfsha dev` runs one behind each gate; the tests run it
 * as a process of its own (test/support/rpc-stand-in.ts) and read its
 * execution log to see when it ran which call.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import { monotonicMs } from '../../common/clock';
import { MSG_CALL, MSG_REPLY, NFS_PROGRAM, RecordScanner } from '../../common/oncrpc';

/** NFS v3 WRITE: what the stand-in hosts of `nfsha dev` and the tests send. */
const NFSPROC3_WRITE = 7;

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
  body.writeUInt32BE(NFS_PROGRAM, 12);
  body.writeUInt32BE(3, 16);
  body.writeUInt32BE(NFSPROC3_WRITE, 20);
  const mark = Buffer.alloc(4);
  mark.writeUInt32BE((0x80000000 | body.length) >>> 0, 0);
  return Buffer.concat([mark, body]);
}

/** A stand-in NFS server; `delayMs` may be changed while it runs (calls read after the change get the new delay). */
export interface StandInServer extends net.Server {
  delayMs: number;
  /**
   * What a fence does to a real NFS server (kill and restart it): every
   * connection is cut and no call it had read executes any more. Returns
   * once that is so, like a fence command must.
   */
  fence(): void;
}

/**
 * Listens on host:port (0: any free port) and answers every call after
 * `delayMs`. With `execLog`, each execution is appended to it as a JSON line
 * with its CLOCK_MONOTONIC time, XID and peer. NULL calls (procedure 0, the
 * follower's health probe) are answered at once and not logged.
 */
export function serve(port: number, delayMs: number, execLog?: string, host = '127.0.0.1'): Promise<StandInServer> {
  const fd = execLog === undefined ? undefined : fs.openSync(execLog, 'a');
  const sockets = new Set<net.Socket>();
  const queued = new Set<NodeJS.Timeout>();
  const server: StandInServer = Object.assign(net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.setNoDelay(true);
    s.on('error', () => undefined);
    const peer = `${s.remoteAddress}:${s.remotePort}`;
    const scanner = new RecordScanner((xid, type, head) => {
      if (type !== MSG_CALL) return;
      const procedure = head.length >= 24 ? head.readUInt32BE(20) : -1;
      if (procedure === 0) return void s.write(replyRecord(xid));
      const run = () => {
        if (fd !== undefined) fs.writeSync(fd, JSON.stringify({ t: monotonicMs(), xid, peer }) + '\n');
        if (!s.destroyed) s.write(replyRecord(xid));
      };
      if (server.delayMs > 0) {
        const t = setTimeout(() => { queued.delete(t); run(); }, server.delayMs);
        queued.add(t);
      } else run();
    }, 24);
    s.on('data', (chunk) => scanner.push(chunk));
  }), {
    delayMs,
    fence: () => {
      for (const t of queued) clearTimeout(t);
      queued.clear();
      for (const s of sockets) s.destroy();
    },
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}
