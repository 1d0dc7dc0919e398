import type { Route } from '../decision';
import { LOCAL } from '../decision';
import { NFS_ADDRESS, type CommandRunner, type RouteBackend } from './backend';

/**
 * Linux backend (labs, tests): `ip route` for the /32, and after every switch
 * to a remote, `ss -K` destroys the host's sockets to the NFS address so
 * clients reconnect over the new path at once instead of retransmitting into
 * a reset (DESIGN §7, like CTDB's tickle-ACK). Fail-back needs no help: the
 * local SCVM resets old sockets itself.
 */
export class Iproute2Backend implements RouteBackend {
  readonly name = 'iproute2';

  constructor(
    private readonly run: CommandRunner,
    private readonly address = NFS_ADDRESS,
    /** false: leave the host's sockets alone, as ESXi does (the lab's no-host-reset mode). */
    private readonly killSockets = true,
  ) {}

  async read(): Promise<Route> {
    const out = await this.run('ip', ['-j', 'route', 'show', `${this.address}/32`]);
    const routes = JSON.parse(out || '[]') as Array<{ dst: string; gateway?: string }>;
    const r = routes.find((x) => x.dst === this.address && x.gateway);
    return r?.gateway ? { kind: 'remote', gateway: r.gateway } : LOCAL;
  }

  async apply(target: Route): Promise<void> {
    if (target.kind === 'local') {
      await this.run('ip', ['route', 'del', `${this.address}/32`]).catch((err: Error) => {
        if (!/No such process|not found/i.test(err.message)) throw err;
      });
      return;
    }
    await this.run('ip', ['route', 'replace', `${this.address}/32`, 'via', target.gateway]);
    if (this.killSockets) await this.run('ss', ['-K', 'dst', this.address]).catch(() => undefined);
  }
}
