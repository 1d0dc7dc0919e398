import type { Histogram, Counter } from 'prom-client';
import type { Metrics } from '../common/metrics';

/**
 * The agent's Prometheus metrics. Made only when the agent serves them
 * (--metrics-listen): an agent without them loads no prom-client and runs none
 * of its process collectors (an event-loop monitor sampling every 10 ms),
 * which keeps the ESXi agent's memory and idle CPU down.
 */
export class AgentMetrics {
  readonly registry: Metrics['registry'];
  private readonly metrics: Metrics;
  private readonly routeChanges: Counter;
  private readonly probes: Counter;
  private readonly probeRtt: Histogram;

  constructor(now: () => { routeRemote: boolean; masterConnected: boolean }, tls: { dir?: string; insecure?: boolean } = {}) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { Metrics: MetricsClass } = require('../common/metrics') as typeof import('../common/metrics');
    this.metrics = new MetricsClass('agent');
    this.registry = this.metrics.registry;
    this.metrics.watchCertificate(tls);
    this.routeChanges = this.metrics.counter('nfsha_agent_route_changes_total', 'Route changes by kind', ['kind']);
    this.probes = this.metrics.counter('nfsha_agent_probes_total', 'Probes by target and result', ['target', 'result']);
    this.probeRtt = this.metrics.histogram('nfsha_agent_probe_rtt_seconds', 'Round-trip time of answered probes', ['target'], [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5]);
    this.metrics.gauge('nfsha_agent_route_remote', '1 while the NFS address is routed to a remote SCVM', [], (g) => g.set(now().routeRemote ? 1 : 0));
    this.metrics.gauge('nfsha_agent_master_connected', '1 while the membership stream to the master is up', [], (g) => g.set(now().masterConnected ? 1 : 0));
  }

  probed(target: 'local' | 'remote', answered: boolean, rttSeconds: number): void {
    this.probes.inc({ target, result: answered ? 'answered' : 'missed' });
    if (answered) this.probeRtt.observe({ target }, rttSeconds);
  }

  routeChanged(kind: 'repair' | 'failback' | 'reroute' | 'switch'): void {
    this.routeChanges.inc({ kind });
  }

  serve(listen: string): ReturnType<Metrics['serve']> {
    return this.metrics.serve(listen);
  }
}
