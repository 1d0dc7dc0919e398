import assert from 'node:assert/strict';
import { statusVersusGates } from '../support/chaos';
import type { Admission } from '../support/invariant';

/** The lab's mapping of client ids to hosts, reduced to what these cases use. */
const hostOf = (clientId: string) => clientId.replace(/^host:/, '');
const serving = (gate: string, host: string, admittedUntil = Infinity): Admission =>
  ({ gate, client: `host:${host}`, host, from: 1, admittedUntil, to: admittedUntil });
const status = (owners: Record<string, string>, maintenance: string[] = []) => ({
  clients: Object.entries(owners).map(([host, server]) => ({ clientId: `host:${host}`, serverId: server })),
  maintenance: maintenance.map((serverId) => ({ serverId })),
});

describe('rolling restart check: nfsha status against the gates\' event logs', () => {
  it('agrees when each host is served by exactly the gate of its owner and maintenance is as expected', () => {
    const gates = [serving('gate-2', 'esx-1'), serving('gate-2', 'esx-2'), serving('gate-3', 'esx-3'), serving('gate-1', 'esx-1', 500)];
    assert.deepEqual(statusVersusGates(status({ 'esx-1': 'scvm-2', 'esx-2': 'scvm-2', 'esx-3': 'scvm-3' }, ['scvm-1']), gates, ['scvm-1'], hostOf), []);
  });

  it('names a host that a second gate still serves, one no gate serves, and one status does not list', () => {
    const gates = [serving('gate-1', 'esx-1'), serving('gate-2', 'esx-1'), serving('gate-3', 'esx-3')];
    assert.deepEqual(statusVersusGates(status({ 'esx-1': 'scvm-2', 'esx-2': 'scvm-2' }), gates, [], hostOf), [
      'esx-1: status says gate-2, gates serving: gate-1 and gate-2',
      'esx-2: status says gate-2, gates serving: none',
      'esx-3: status says no server, gates serving: gate-3',
    ]);
  });

  it('names a maintenance mark that status lacks or keeps after the exit', () => {
    assert.deepEqual(statusVersusGates(status({}, []), [], ['scvm-1'], hostOf), ['maintenance: status lists [], expected [scvm-1]']);
    assert.deepEqual(statusVersusGates(status({}, ['scvm-1']), [], [], hostOf), ['maintenance: status lists [scvm-1], expected []']);
  });
});
