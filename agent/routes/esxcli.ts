import type { Route } from '../decision';
import { LOCAL } from '../decision';
import { NFS_ADDRESS, type CommandRunner, type RouteBackend } from './backend';

/**
 * ESXi backend: `esxcli network ip route ipv4 list|add|remove`. ESXi refuses
 * to add a route that exists, so a switch removes the old one first. Static
 * routes persist in esx.conf across reboots; the agent adopts or repairs them
 * at start. The runner may be local or SSH (from an SCVM).
 */
export class EsxcliBackend implements RouteBackend {
  readonly name = 'esxcli';

  constructor(private readonly run: CommandRunner, private readonly esxcli = 'esxcli', private readonly address = NFS_ADDRESS) {}

  private cli(...args: string[]): Promise<string> {
    return this.run(this.esxcli, ['network', 'ip', 'route', 'ipv4', ...args]);
  }

  /** Every static route to the NFS address (normally zero or one). */
  async gateways(): Promise<string[]> {
    return parseEsxcliRoutes(await this.cli('list'))
      .filter((r) => r.network === this.address && r.netmask === '255.255.255.255')
      .map((r) => r.gateway);
  }

  async read(): Promise<Route> {
    const [gw] = await this.gateways();
    return gw ? { kind: 'remote', gateway: gw } : LOCAL;
  }

  async apply(target: Route): Promise<void> {
    for (const gw of await this.gateways()) {
      if (target.kind === 'remote' && gw === target.gateway) return;
      await this.cli('remove', '-g', gw, '-n', `${this.address}/32`);
    }
    if (target.kind === 'remote') await this.cli('add', '-g', target.gateway, '-n', `${this.address}/32`);
  }
}

export interface EsxRouteRow {
  network: string;
  netmask: string;
  gateway: string;
  iface: string;
  source: string;
}

/** Parses `esxcli network ip route ipv4 list` (a header, a dashed rule, then rows). */
export function parseEsxcliRoutes(text: string): EsxRouteRow[] {
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
  const rule = lines.findIndex((l) => /^-+(\s+-+)+$/.test(l));
  return lines.slice(rule + 1).map((l) => l.split(/\s+/)).filter((c) => c.length >= 4)
    .map(([network, netmask, gateway, iface, source = '']) => ({ network, netmask, gateway, iface, source }));
}
