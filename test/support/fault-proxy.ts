import * as net from 'node:net';

/**
 * A TCP proxy between a client and a server that can silently stop
 * forwarding (a partition where nothing is closed and nothing arrives), so
 * partitions are deterministic without netem. DESIGN §8.
 */
export class FaultProxy {
  private server?: net.Server;
  private readonly pairs = new Set<[net.Socket, net.Socket]>();
  private blackholed = false;
  port = 0;

  constructor(private readonly targetHost: string, private readonly targetPort: number) {}

  /** Starts listening (on `port`, or a free one); resolves with the port. */
  async start(port = 0): Promise<number> {
    this.server = net.createServer((inbound) => {
      const outbound = net.connect(this.targetPort, this.targetHost);
      const pair: [net.Socket, net.Socket] = [inbound, outbound];
      this.pairs.add(pair);
      const close = () => { inbound.destroy(); outbound.destroy(); this.pairs.delete(pair); };
      for (const [from, to] of [[inbound, outbound], [outbound, inbound]] as const) {
        from.on('data', (chunk) => { if (!this.blackholed) to.write(chunk); });
        from.on('error', close);
        from.on('close', close);
      }
    });
    await new Promise<void>((r) => this.server!.listen(port, '127.0.0.1', r));
    this.port = (this.server!.address() as net.AddressInfo).port;
    return this.port;
  }

  /** Drops every byte in both directions from now on, keeping connections open. */
  blackhole(): void {
    this.blackholed = true;
  }

  /** Forwards again; connections that lost bytes are reset so their peers reconnect. */
  heal(): void {
    this.blackholed = false;
    for (const [a, b] of this.pairs) { a.destroy(); b.destroy(); }
    this.pairs.clear();
  }

  async stop(): Promise<void> {
    for (const [a, b] of this.pairs) { a.destroy(); b.destroy(); }
    await new Promise((r) => this.server?.close(r));
  }
}
