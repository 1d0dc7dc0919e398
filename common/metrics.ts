import { X509Certificate } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * Prometheus metrics of one process (prom-client), served as text on
 * `/metrics`. Names follow Prometheus conventions: snake_case, `_total`
 * counters, `_seconds` units, a small set of labels.
 */
export class Metrics {
  readonly registry = new Registry();

  /** `processMetrics`: also the process's own (CPU, memory, event loop); off for in-process simulations. */
  constructor(component: string, opts: { processMetrics?: boolean } = {}) {
    this.registry.setDefaultLabels({ component });
    if (opts.processMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: 'nfsha_' });
  }

  counter(name: string, help: string, labelNames: string[] = []): Counter {
    return new Counter({ name, help, labelNames, registers: [this.registry] });
  }

  gauge(name: string, help: string, labelNames: string[] = [], collect?: (g: Gauge) => void): Gauge {
    return new Gauge({ name, help, labelNames, registers: [this.registry], collect: collect ? function (this: Gauge) { collect(this); } : undefined });
  }

  /**
   * `nfsha_tls_certificate_expiry_timestamp_seconds`: when this process's
   * certificate (`<dir>/cert.pem`) expires, read at each scrape (a renewed
   * certificate shows at once). Nothing for a plain-text process.
   */
  watchCertificate(tls: { dir?: string; insecure?: boolean }): void {
    if (tls.insecure || !tls.dir) return;
    const file = path.join(tls.dir, 'cert.pem');
    this.gauge('nfsha_tls_certificate_expiry_timestamp_seconds', 'When this process\'s TLS certificate expires (Unix seconds)', [], (g) => {
      try {
        g.set(Date.parse(new X509Certificate(fs.readFileSync(file)).validTo) / 1000);
      } catch {
        g.reset();
      }
    });
  }

  histogram(name: string, help: string, labelNames: string[] = [], buckets = [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]): Histogram {
    return new Histogram({ name, help, labelNames, buckets, registers: [this.registry] });
  }

  /** Serves `/metrics` on `listen` (host:port); resolves with the bound address. */
  serve(listen: string): Promise<{ address: string; close(): Promise<void> }> {
    const i = listen.lastIndexOf(':');
    const host = listen.slice(0, i).replace(/^\[(.*)\]$/, '$1');
    const port = Number(listen.slice(i + 1));
    const server = http.createServer((req, res) => {
      if (req.url !== '/metrics') {
        res.writeHead(404).end('see /metrics\n');
        return;
      }
      this.registry.metrics().then((text) => {
        res.writeHead(200, { 'content-type': this.registry.contentType }).end(text);
      }, (err: Error) => res.writeHead(500).end(err.message));
    });
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        const a = server.address() as import('node:net').AddressInfo;
        resolve({ address: `${host}:${a.port}`, close: () => new Promise((r) => server.close(() => r())) });
      });
    });
  }
}

