import assert from 'node:assert/strict';
import { silentLogger } from '../../common/log';
import { STALE_RESET_TABLE, StaleReset, staleResetRuleset, withoutCounters, type NftRunner } from '../../follower/stale-reset';
import { fakeClock, flush } from '../support/fake-clock';

const SETTINGS = { interfaces: ['sto', 'mgmt'], clientIp: '192.168.33.1', serviceIp: '192.168.33.2' };

/** nft as far as StaleReset uses it: a table that -f installs and `list table` shows, and hands that can change it. */
function fakeNft() {
  const state = { table: undefined as string | undefined, fail: false, calls: [] as string[] };
  const run: NftRunner = async (args, input) => {
    state.calls.push(args.join(' '));
    if (args[0] === '-f') {
      if (state.fail) throw new Error('Error: Could not process rule: No such device');
      state.table = `table netdev ${STALE_RESET_TABLE} { counter packets 0 bytes 0 ${input!.length} }`;
      return '';
    }
    if (args[0] === 'list') {
      if (!state.table) throw new Error(`Error: No such file or directory; did you mean table '${STALE_RESET_TABLE}'?`);
      return state.table;
    }
    throw new Error(`unexpected nft ${args.join(' ')}`);
  };
  return { state, run };
}

describe('stale-segment reset rule (follower, nftables netdev ingress)', () => {
  it('answers non-SYN segments from the private client address to the NFS address with a TCP reset, on every given interface, and nothing else', () => {
    const text = staleResetRuleset(SETTINGS);
    for (const dev of SETTINGS.interfaces) assert.match(text, new RegExp(`type filter hook ingress device "${dev}" priority 0; policy accept;`));
    const rules = text.split('\n').filter((l) => l.includes('reject'));
    assert.deepEqual(rules.map((r) => r.trim()), Array(2).fill('ip saddr 192.168.33.1 ip daddr 192.168.33.2 tcp flags & syn == 0 counter reject with tcp reset'));
    // One transaction that replaces only our own table.
    assert.deepEqual(text.split('\n').slice(0, 3), [`table netdev ${STALE_RESET_TABLE} {}`, `delete table netdev ${STALE_RESET_TABLE}`, `table netdev ${STALE_RESET_TABLE} {`]);
  });

  it('ignores counters when comparing listings', () => {
    assert.equal(withoutCounters('counter packets 12 bytes 720 reject'), withoutCounters('counter packets 0 bytes 0 reject'));
  });

  it('installs at start, leaves an unchanged rule alone, and installs it again when it was removed or changed', async () => {
    const clock = fakeClock();
    const nft = fakeNft();
    const r = new StaleReset(SETTINGS, { clock, log: silentLogger(), run: nft.run, reconcileMs: 10_000 });
    await r.start();
    assert.equal(r.installs, 1);
    await clock.tickAsync(10_000);
    await flush();
    assert.equal(r.installs, 1, 'an unchanged rule is not installed again');
    nft.state.table = undefined; // nft flush ruleset, or a reboot of the network stack
    await clock.tickAsync(10_000);
    await flush();
    assert.equal(r.installs, 2);
    nft.state.table = `table netdev ${STALE_RESET_TABLE} { }`; // a rule deleted by hand
    await clock.tickAsync(10_000);
    await flush();
    assert.equal(r.installs, 3);
    r.stop();
    const calls = nft.state.calls.length;
    await clock.tickAsync(60_000);
    assert.equal(nft.state.calls.length, calls, 'a stopped follower stops reconciling');
  });

  it('logs a failed install (an interface not there yet) and retries, without throwing', async () => {
    const clock = fakeClock();
    const nft = fakeNft();
    nft.state.fail = true;
    const r = new StaleReset(SETTINGS, { clock, log: silentLogger(), run: nft.run, reconcileMs: 10_000 });
    await r.start();
    assert.deepEqual([r.installs, r.failures], [0, 1]);
    nft.state.fail = false;
    await clock.tickAsync(10_000);
    await flush();
    assert.deepEqual([r.installs, r.failures], [1, 1]);
    r.stop();
  });

  it('does nothing without interfaces', async () => {
    const nft = fakeNft();
    const r = new StaleReset({ ...SETTINGS, interfaces: [] }, { clock: fakeClock(), log: silentLogger(), run: nft.run, reconcileMs: 10_000 });
    await r.start();
    assert.deepEqual(nft.state.calls, []);
  });
});
