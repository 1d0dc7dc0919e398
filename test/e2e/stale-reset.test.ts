import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CLI, waitFor } from '../support/cluster';
import { scratchDir } from '../support/scratch';

/**
 * A host whose route to 192.168.33.2 moved from its own SCVM (private link)
 * to another SCVM's storage interface keeps an established connection that
 * retransmits there. The new SCVM's follower keeps an nftables netdev ingress
 * rule that resets such segments back to the sender's MAC; without it, the
 * connection hangs (a routed RST from the new SCVM would leave on its own
 * private link, to the wrong host).
 */
const tag = `${process.pid % 10000}`;
const H = `nfsha-sr-h${tag}`;
const OLD = `nfsha-sr-o${tag}`;
const NEW = `nfsha-sr-n${tag}`;

function sh(args: string[]): string {
  return execFileSync(args[0], args.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}
const inNs = (ns: string, ...args: string[]) => sh(['ip', 'netns', 'exec', ns, ...args]);

function requirements(): void {
  if (process.getuid?.() !== 0) throw new Error('this test needs root (network namespaces, nftables): run the tests as root');
  for (const tool of ['ip', 'nft']) {
    try { sh(['sh', '-c', `command -v ${tool}`]); } catch { throw new Error(`this test needs '${tool}' (Debian packages iproute2, nftables): bash test/setup.sh`); }
  }
}

function topology(): void {
  for (const ns of [H, OLD, NEW]) sh(['ip', 'netns', 'add', ns]);
  // The host's private link to its own (old) SCVM, and its storage link to the new SCVM.
  sh(['ip', 'link', 'add', 'hpriv', 'netns', H, 'type', 'veth', 'peer', 'name', 'opriv', 'netns', OLD]);
  sh(['ip', 'link', 'add', 'hsto', 'netns', H, 'type', 'veth', 'peer', 'name', 'nsto', 'netns', NEW]);
  inNs(H, 'ip', 'addr', 'add', '192.168.33.1/24', 'dev', 'hpriv');
  inNs(H, 'ip', 'addr', 'add', '10.77.0.11/24', 'dev', 'hsto');
  inNs(OLD, 'ip', 'addr', 'add', '192.168.33.2/24', 'dev', 'opriv');
  inNs(NEW, 'ip', 'addr', 'add', '10.77.0.21/24', 'dev', 'nsto');
  // The new SCVM has 192.168.33.2 too, on its own private link (to nobody here: its host is not in this test).
  inNs(NEW, 'ip', 'link', 'add', 'npriv', 'type', 'veth', 'peer', 'name', 'nprivx');
  inNs(NEW, 'ip', 'addr', 'add', '192.168.33.2/24', 'dev', 'npriv');
  for (const [ns, devs] of [[H, ['lo', 'hpriv', 'hsto']], [OLD, ['lo', 'opriv']], [NEW, ['lo', 'nsto', 'npriv', 'nprivx']]] as const) {
    for (const d of devs) inNs(ns, 'ip', 'link', 'set', d, 'up');
  }
}

function teardown(): void {
  for (const ns of [H, OLD, NEW]) try { sh(['ip', 'netns', 'del', ns]); } catch { /* not there */ }
}

/**
 * In the host: connect to 192.168.33.2:2049 (served in the old SCVM), then on
 * "move" print when the connection fails after one more write. Prints JSON lines.
 */
const CLIENT = `
const net = require('net');
const s = net.connect({ host: '192.168.33.2', port: 2049, localAddress: '192.168.33.1' });
let wroteAt = 0;
s.on('connect', () => { s.write('hello'); });
s.on('data', () => console.log(JSON.stringify({ ev: 'echo' })));
s.on('error', (e) => { console.log(JSON.stringify({ ev: 'error', code: e.code, ms: Number(process.hrtime.bigint() / 1000000n) - wroteAt })); process.exit(0); });
process.stdin.on('data', () => { wroteAt = Number(process.hrtime.bigint() / 1000000n); s.write('after the move'); console.log(JSON.stringify({ ev: 'wrote' })); });
`;
const SERVER = `require('net').createServer((c) => c.on('data', (d) => c.write(d))).listen(2049, '192.168.33.2');`;

function lines(child: ChildProcess): { next: (pred: (e: Record<string, unknown>) => boolean, ms: number) => Promise<Record<string, unknown> | undefined> } {
  const seen: Array<Record<string, unknown>> = [];
  const waiters: Array<() => void> = [];
  let buf = '';
  child.stdout!.on('data', (b: Buffer) => {
    buf += b.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      try { seen.push(JSON.parse(line)); } catch { /* not ours */ }
      for (const w of waiters.splice(0)) w();
    }
  });
  return {
    next: (pred, ms) => new Promise((resolve) => {
      const end = Date.now() + ms;
      const check = () => {
        const e = seen.find(pred);
        if (e) return resolve(e);
        if (Date.now() > end) return resolve(undefined);
        waiters.push(check);
        setTimeout(check, Math.max(0, end - Date.now()) + 1);
      };
      check();
    }),
  };
}

/** Connects from the host, moves its route to the new SCVM, writes once more; the error the client then saw, if any within `ms`. */
async function staleConnection(ms: number): Promise<Record<string, unknown> | undefined> {
  const server = spawn('ip', ['netns', 'exec', OLD, process.execPath, '-e', SERVER], { stdio: 'ignore' });
  try {
    await new Promise((r) => setTimeout(r, 300)); // the echo server binds; the client retries below if not
    const client = spawn('ip', ['netns', 'exec', H, process.execPath, '-e', CLIENT], { stdio: ['pipe', 'pipe', 'inherit'] });
    try {
      const out = lines(client);
      assert.ok(await out.next((e) => e.ev === 'echo', 5000), 'the host could not talk to its own SCVM');
      inNs(H, 'ip', 'route', 'replace', '192.168.33.2/32', 'via', '10.77.0.21');
      client.stdin!.write('move\n');
      return await out.next((e) => e.ev === 'error', ms);
    } finally {
      client.kill('SIGKILL');
      inNs(H, 'ip', 'route', 'del', '192.168.33.2/32');
    }
  } finally {
    server.kill('SIGKILL');
  }
}

describe('stale connections reset from the SCVM side (namespaces, real nftables; needs root, nftables)', function () {
  this.timeout(90_000);
  let follower: ChildProcess | undefined;
  const dir = scratchDir('nfsha-sr-');

  before(() => {
    requirements();
    teardown();
    topology();
  });
  after(() => {
    follower?.kill('SIGKILL');
    teardown();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('without the rule, a rerouted host\'s old connection hangs: no reset reaches it', async () => {
    const e = await staleConnection(2500);
    assert.equal(e, undefined, `the connection failed without the rule: ${JSON.stringify(e)}`);
  });

  it('the follower installs the rule at start (--stale-reset-interfaces), and the host\'s old connection is reset on its first stale segment', async () => {
    const log = path.join(dir, 'follower.log');
    const out = fs.openSync(log, 'w');
    follower = spawn('ip', ['netns', 'exec', NEW, process.execPath, CLI, 'follower', '--server-id', 'scvm-2', '--master', '127.0.0.1:1', '--insecure',
      '--gate-listen', `unix:${path.join(dir, 'gate.sock')}`, '--stale-reset-interfaces', 'nsto'], { stdio: ['ignore', out, out] });
    await waitFor('stale_reset.installed in the follower\'s log', () => fs.readFileSync(log, 'utf8').includes('"stale_reset.installed"'), 15_000, 100)
      .catch((err: Error) => assert.fail(`${err.message}:\n${fs.readFileSync(log, 'utf8')}`));
    assert.match(inNs(NEW, 'nft', 'list', 'table', 'netdev', 'nfsha_stale_reset'), /ip saddr 192\.168\.33\.1 ip daddr 192\.168\.33\.2 tcp flags (& syn == 0|! syn) counter packets \d+ bytes \d+ reject with tcp reset/);
    const e = await staleConnection(5000);
    assert.ok(e, 'the old connection was not reset');
    assert.equal(e.code, 'ECONNRESET');
    process.stderr.write(`      reset ${e.ms} ms after the first write on the new path\n`);
    // The reset left from the new SCVM's storage interface, by the rule.
    assert.match(inNs(NEW, 'nft', 'list', 'table', 'netdev', 'nfsha_stale_reset'), /counter packets [1-9]\d* bytes/);
  });

  it('reconciles: a flushed ruleset gets the rule back', async () => {
    inNs(NEW, 'nft', 'flush', 'ruleset');
    // The follower checks every 10 s.
    await waitFor('the rule back', () => inNs(NEW, 'nft', 'list', 'table', 'netdev', 'nfsha_stale_reset').includes('reject with tcp reset'), 25_000, 200)
      .catch((err: Error) => assert.fail(`${err.message}; the follower's log:\n${fs.readFileSync(path.join(dir, 'follower.log'), 'utf8')}`));
  });
});
