import assert from 'node:assert/strict';
import { EsxcliBackend, parseEsxcliRoutes } from '../../agent/routes/esxcli';
import { Iproute2Backend } from '../../agent/routes/iproute2';
import { LOCAL } from '../../agent/decision';

/** Output recorded from `esxcli network ip route ipv4 list` on ESXi 8.0 U2 (addresses changed). */
const ESX_LIST_WITH_ROUTE = `Network       Netmask          Gateway     Interface  Source
------------  ---------------  ----------  ---------  ------
default       0.0.0.0          10.20.0.1   vmk0       MANUAL
10.10.0.0     255.255.255.0    0.0.0.0     vmk2       MANUAL
10.20.0.0     255.255.255.0    0.0.0.0     vmk0       MANUAL
192.168.33.0  255.255.255.0    0.0.0.0     vmk1       MANUAL
192.168.33.2  255.255.255.255  10.10.0.21  vmk2       MANUAL
`;
const ESX_LIST_NO_ROUTE = ESX_LIST_WITH_ROUTE.split('\n').filter((l) => !l.startsWith('192.168.33.2 ')).join('\n');

/** A fake `esxcli` that answers with recorded output and applies add/remove to its table (a mock: ESXi cannot run here). */
function recordedEsxcli(initial: string) {
  let table = initial;
  const calls: string[] = [];
  const run = async (cmd: string, args: string[]) => {
    calls.push([cmd, ...args].join(' '));
    const verb = args[4];
    if (verb === 'list') return table;
    const gw = args[args.indexOf('-g') + 1];
    if (verb === 'add') {
      if (table.includes('192.168.33.2 ')) throw new Error('Unable to add route: route already exists');
      table += `192.168.33.2  255.255.255.255  ${gw}  vmk2       MANUAL\n`;
      return '';
    }
    if (verb === 'remove') {
      table = table.split('\n').filter((l) => !(l.startsWith('192.168.33.2 ') && l.includes(gw))).join('\n');
      return '';
    }
    throw new Error(`unexpected esxcli call ${args.join(' ')}`);
  };
  return { run, calls, table: () => table };
}

describe('route backends', () => {
  it('parses esxcli route listings (recorded output)', () => {
    const rows = parseEsxcliRoutes(ESX_LIST_WITH_ROUTE);
    assert.equal(rows.length, 5);
    assert.deepEqual(rows[4], { network: '192.168.33.2', netmask: '255.255.255.255', gateway: '10.10.0.21', iface: 'vmk2', source: 'MANUAL' });
  });

  it('esxcli backend against a recorded-output fake: reads, switches with remove-then-add, and goes local', async () => {
    const fake = recordedEsxcli(ESX_LIST_WITH_ROUTE);
    const b = new EsxcliBackend(fake.run);
    assert.deepEqual(await b.read(), { kind: 'remote', gateway: '10.10.0.21' });
    await b.apply({ kind: 'remote', gateway: '10.20.0.23' });
    assert.deepEqual(fake.calls.slice(-2), [
      'esxcli network ip route ipv4 remove -g 10.10.0.21 -n 192.168.33.2/32',
      'esxcli network ip route ipv4 add -g 10.20.0.23 -n 192.168.33.2/32',
    ]);
    assert.deepEqual(await b.read(), { kind: 'remote', gateway: '10.20.0.23' });
    await b.apply(LOCAL);
    assert.deepEqual(await b.read(), LOCAL);
    assert.equal(fake.table().trim(), ESX_LIST_NO_ROUTE.trim());
  });

  it('esxcli backend changes nothing when the route is already right', async () => {
    const fake = recordedEsxcli(ESX_LIST_WITH_ROUTE);
    await new EsxcliBackend(fake.run).apply({ kind: 'remote', gateway: '10.10.0.21' });
    assert.deepEqual(fake.calls, ['esxcli network ip route ipv4 list']);
  });

  it('iproute2 backend issues ip route replace/del and resets sockets after a switch (fake runner)', async () => {
    const calls: string[] = [];
    let json = '[]';
    const b = new Iproute2Backend(async (cmd, args) => {
      calls.push([cmd, ...args].join(' '));
      if (args[0] === '-j') return json;
      if (args[1] === 'del') throw new Error('RTNETLINK answers: No such process');
      return '';
    });
    assert.deepEqual(await b.read(), LOCAL);
    await b.apply({ kind: 'remote', gateway: '10.10.0.21' });
    assert.deepEqual(calls.slice(-2), ['ip route replace 192.168.33.2/32 via 10.10.0.21', 'ss -K dst 192.168.33.2']);
    json = '[{"dst":"192.168.33.2","gateway":"10.10.0.21","dev":"sto","flags":[]}]';
    assert.deepEqual(await b.read(), { kind: 'remote', gateway: '10.10.0.21' });
    await b.apply(LOCAL); // an absent route is not an error
    assert.equal(calls.at(-1), 'ip route del 192.168.33.2/32');
  });
});
