import { randomInt } from 'node:crypto';
import * as raw from 'raw-socket';

/** A target that cannot be probed at all (no raw socket): a setup error, not a miss. */
export class ProbeSetupError extends Error {
  override name = 'ProbeSetupError';
}

interface Waiter {
  resolve: (answered: boolean) => void;
  timer: NodeJS.Timeout;
}

/**
 * ICMP echo over a raw socket (root or CAP_NET_RAW). One socket serves every
 * target; replies are matched by (source, identifier, sequence). Bound to a
 * device, it probes the local SCVM over the private link even while the host
 * route sends other traffic for that address elsewhere.
 */
export class IcmpProber {
  private socket?: raw.Socket;
  private readonly id = randomInt(1, 0xffff);
  private seq = 0;
  private readonly waiting = new Map<string, Waiter>();

  constructor(private readonly bindDevice?: string) {}

  private open(): raw.Socket {
    if (this.socket) return this.socket;
    let socket: raw.Socket;
    try {
      socket = raw.createSocket({ protocol: raw.Protocol.ICMP });
      if (this.bindDevice) {
        const name = Buffer.from(this.bindDevice + '\0');
        socket.setOption(raw.SocketLevel.SOL_SOCKET, raw.SocketOption.SO_BINDTODEVICE, name, name.length);
      }
    } catch (err) {
      throw new ProbeSetupError(`cannot open an ICMP raw socket${this.bindDevice ? ` on ${this.bindDevice}` : ''} (needs root or CAP_NET_RAW): ${(err as Error).message}`);
    }
    socket.on('message', (buf: Buffer, source: string) => this.onMessage(buf, source));
    socket.on('error', () => undefined);
    this.socket = socket;
    return socket;
  }

  private onMessage(buf: Buffer, source: string): void {
    const ihl = (buf[0] & 0x0f) * 4;
    if (buf.length < ihl + 8 || buf[ihl] !== 0 /* echo reply */) return;
    const id = buf.readUInt16BE(ihl + 4);
    const seq = buf.readUInt16BE(ihl + 6);
    if (id !== this.id) return;
    const w = this.waiting.get(`${source}/${seq}`);
    if (!w) return;
    clearTimeout(w.timer);
    this.waiting.delete(`${source}/${seq}`);
    w.resolve(true);
  }

  /** Sends one echo request; true if the reply comes within `timeoutMs`. */
  probe(ip: string, timeoutMs: number): Promise<boolean> {
    const socket = this.open();
    this.seq = (this.seq + 1) & 0xffff;
    const seq = this.seq;
    const packet = Buffer.alloc(16);
    packet.writeUInt8(8, 0); // echo request
    packet.writeUInt16BE(this.id, 4);
    packet.writeUInt16BE(seq, 6);
    packet.write('nfsha!!!', 8);
    raw.writeChecksum(packet, 2, raw.createChecksum(packet));
    const key = `${ip}/${seq}`;
    return new Promise((resolve) => {
      // A reply that came while this process was stalled (a GC pause, a
      // busy host) waits in the socket, and Node runs expired timers before
      // it reads sockets: the timeout would count the agent's own stall as a
      // miss, and three such stalls in a row reroute a healthy host. So a
      // timeout decides only after one more look at the socket (setImmediate
      // runs after the poll phase that reads it).
      const timer = setTimeout(() => setImmediate(() => {
        if (!this.waiting.delete(key)) return;
        resolve(false);
      }), timeoutMs);
      this.waiting.set(key, { resolve, timer });
      socket.send(packet, 0, packet.length, ip, null, (err: Error | null) => {
        if (err && this.waiting.delete(key)) {
          clearTimeout(timer);
          resolve(false);
        }
      });
    });
  }

  close(): void {
    for (const w of this.waiting.values()) { clearTimeout(w.timer); w.resolve(false); }
    this.waiting.clear();
    this.socket?.close();
    this.socket = undefined;
  }
}
