import { spawn } from 'node:child_process';
import type { Clock, TimerHandle } from '../common/clock';
import type { Logger } from '../common/log';

/** The nftables table the follower owns; nothing else is touched. */
export const STALE_RESET_TABLE = 'nfsha_stale_reset';

export interface StaleResetSettings {
  /** The SCVM's storage and management interfaces: where a rerouted host's old connection lands. */
  interfaces: string[];
  /** The address hosts use towards their own SCVM (192.168.33.1). */
  clientIp: string;
  /** The NFS address every host mounts from (192.168.33.2). */
  serviceIp: string;
}

/**
 * The ruleset (nft -f input) that answers a rerouted host's stale TCP
 * segments with a reset at layer 2, back to the sender's MAC (issue 15,
 * DESIGN §7). After a reroute the host's old connection (192.168.33.1 →
 * 192.168.33.2) keeps retransmitting, now routed to this SCVM's storage or
 * management interface. A routed RST would go to 192.168.33.1 on this SCVM's
 * own private link, i.e. to the wrong host; an ingress reject answers on the
 * interface the segment came in on. SYNs pass: a new connection from a
 * rerouted host is what the gate is there to admit.
 *
 * Replacing the table in one transaction (create, delete, create) keeps
 * other tables untouched and leaves no moment without the rule.
 */
export function staleResetRuleset(s: StaleResetSettings): string {
  const chains = s.interfaces.map((dev, i) => [
    `  chain ingress_${i} {`,
    `    type filter hook ingress device ${JSON.stringify(dev)} priority 0; policy accept;`,
    `    ip saddr ${s.clientIp} ip daddr ${s.serviceIp} tcp flags & syn == 0 counter reject with tcp reset`,
    '  }',
  ].join('\n'));
  return [
    `table netdev ${STALE_RESET_TABLE} {}`,
    `delete table netdev ${STALE_RESET_TABLE}`,
    `table netdev ${STALE_RESET_TABLE} {`,
    ...chains,
    '}',
    '',
  ].join('\n');
}

/** The listing without the counters, which move on their own. */
export function withoutCounters(listing: string): string {
  return listing.replace(/counter packets \d+ bytes \d+/g, 'counter');
}

/** Runs nft with `input` on stdin; resolves with stdout, rejects with stderr. */
export type NftRunner = (args: string[], input?: string) => Promise<string>;

export const nftRunner: NftRunner = (args, input) =>
  new Promise((resolve, reject) => {
    const child = spawn('nft', args, { stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
    child.on('error', (e) => reject(new Error(`nft: ${e.message}`)));
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`nft ${args.join(' ')}: ${err.trim() || `exit ${code}`}`))));
    if (child.stdin) {
      // nft may exit before reading (a syntax error): EPIPE is its exit code's news, not a crash.
      child.stdin.on('error', () => undefined);
      child.stdin.end(input);
    }
  });

/**
 * Installs the stale-segment reset rule at start, and reconciles it: a
 * listing that differs from the one read back after our own install (a
 * flush, an interface that came back, a rule removed by hand) is installed
 * again. An interface that does not exist yet is an error logged and
 * retried, never fatal: the follower's job comes first.
 */
export class StaleReset {
  private timer?: TimerHandle;
  private installed?: string;
  private stopped = false;
  /** Installs, repairs included. */
  installs = 0;
  failures = 0;

  constructor(
    private readonly settings: StaleResetSettings,
    private readonly opts: { clock: Clock; log: Logger; run?: NftRunner; reconcileMs: number },
  ) {}

  get configured(): boolean {
    return this.settings.interfaces.length > 0;
  }

  async start(): Promise<void> {
    if (!this.configured) return;
    this.stopped = false;
    await this.reconcile();
    this.schedule();
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = this.opts.clock.setTimeout(() => void this.reconcile().finally(() => this.schedule()), this.opts.reconcileMs);
  }

  private get run(): NftRunner {
    return this.opts.run ?? nftRunner;
  }

  /** Installs the rule when it is missing or not ours as we left it; true when it is in place. */
  async reconcile(): Promise<boolean> {
    const now = await this.run(['list', 'table', 'netdev', STALE_RESET_TABLE]).then(withoutCounters, () => undefined);
    if (now !== undefined && now === this.installed) return true;
    try {
      await this.run(['-f', '-'], staleResetRuleset(this.settings));
      this.installed = withoutCounters(await this.run(['list', 'table', 'netdev', STALE_RESET_TABLE]));
      this.installs++;
      this.opts.log.info({ ev: 'stale_reset.installed', interfaces: this.settings.interfaces, repaired: this.installs > 1 },
        this.installs > 1 ? 'stale-segment reset rule was changed or missing: installed again' : 'stale-segment reset rule installed');
      return true;
    } catch (err) {
      this.failures++;
      this.installed = undefined;
      this.opts.log.error({ ev: 'stale_reset.failed', interfaces: this.settings.interfaces, err: (err as Error).message }, 'cannot install the stale-segment reset rule (retrying)');
      return false;
    }
  }

  /**
   * Stops reconciling. The rule stays: it is as right while the follower
   * restarts (an upgrade) as while it runs, and a host rerouted here
   * meanwhile needs it most.
   */
  stop(): void {
    this.stopped = true;
    if (this.timer) this.opts.clock.clearTimeout(this.timer);
  }
}
