import { execFile } from 'node:child_process';
import * as net from 'node:net';
import * as readline from 'node:readline';

/**
 * Runs inside a host namespace for the reroute benchmark. For each stdin line
 * `wait <localName>` it measures, from that moment, when the route to the NFS
 * address changed and when the first TCP connection through the new path
 * reached a server other than `localName`; prints one JSON line.
 */
const NFS = '192.168.33.2';

function routeGateway(): Promise<string> {
  return new Promise((resolve) => {
    execFile('ip', ['-j', 'route', 'show', `${NFS}/32`], (err, out) => {
      const r = err ? [] : (JSON.parse(out || '[]') as Array<{ gateway?: string }>);
      resolve(r.find((x) => x.gateway)?.gateway ?? 'local');
    });
  });
}

function whoAnswers(timeoutMs: number): Promise<string> {
  return new Promise((resolve) => {
    let got = '';
    const s = net.connect({ host: NFS, port: 2049 });
    const done = (v: string) => { s.destroy(); resolve(v); };
    s.setTimeout(timeoutMs, () => done(''));
    s.on('data', (d) => { got += d.toString(); });
    s.on('end', () => done(got.trim()));
    s.on('error', () => done(''));
  });
}

async function measure(localName: string, limitMs: number): Promise<object> {
  const t0 = performance.now();
  let routeMs: number | undefined;
  while (performance.now() - t0 < limitMs) {
    if (routeMs === undefined && (await routeGateway()) !== 'local') routeMs = performance.now() - t0;
    if (routeMs !== undefined) {
      const who = await whoAnswers(300);
      if (who && who !== localName) return { routeMs, connectMs: performance.now() - t0, server: who };
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  return { error: `no reroute within ${limitMs} ms` };
}

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', async (line) => {
  const [cmd, name, limit] = line.trim().split(/\s+/);
  if (cmd === 'wait') process.stdout.write(JSON.stringify(await measure(name, Number(limit ?? 20000))) + '\n');
});
