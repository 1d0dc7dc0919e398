import assert from 'node:assert/strict';
import fc from 'fast-check';
import { gateRules, MASTER_RULES } from '../../common/edge-rules';
import { identityFromAltNames, issueCertificate, createCa } from '../../common/pki';
import { X509Certificate } from 'node:crypto';

const follower1 = { role: 'follower', id: 'scvm-1' } as const;
const agent1 = { role: 'agent', id: 'esx-1' } as const;
const session = (m: unknown, who: Parameters<NonNullable<typeof MASTER_RULES[string]['check']>>[1] = follower1) =>
  MASTER_RULES['/nfsha.v1.SessionMaster/Session'].check!(m, who);
const intro = (fields: object) => ({ kind: 'introduction', introduction: { serverId: 'scvm-1', hostId: '', storageIp: '', mgmtIp: '', highestEpoch: 0, resumeSessionId: '', clients: [], ...fields } });

describe('edge rules: who may call what, and field validation in one place', () => {
  it('lets a follower introduce itself only under its own server id', () => {
    session(intro({}));
    assert.throws(() => session(intro({ serverId: 'scvm-2' })), { name: 'PermissionDenied', message: /follower\/scvm-1 may not act as server_id "scvm-2"/ });
    session(intro({ serverId: 'anything-goes' }), 'insecure');
  });

  it('refuses malformed introductions: ids, IPs, epochs past 2^53, tokens', () => {
    for (const bad of [
      { serverId: 'bad id' }, { storageIp: '10.0.0.300' }, { hostId: 'x'.repeat(65) }, { highestEpoch: 2 ** 53 },
      { resumeSessionId: '../x' }, { clients: [{ clientId: 'ok', token: null }] }, { clients: [{ clientId: 'ok', token: { epoch: 0, sequence: 1 } }] },
      { clients: [{ clientId: '', token: { epoch: 1, sequence: 1 } }] }, { clientsInFlight: ['bad id'] },
      { clientsInFlight: Array.from({ length: 1025 }, (_, i) => `host:esx-${i}`) },
    ]) {
      assert.throws(() => session(intro(bad)), { name: 'InvalidArgument' }, JSON.stringify(bad));
    }
    assert.throws(() => session({ kind: undefined }), { name: 'InvalidArgument', message: /must carry/ });
    assert.throws(() => session({ kind: 'keepalive', keepalive: { seq: -1 } }), { name: 'InvalidArgument' });
  });

  it('binds agents to their own host for registration and route reports', () => {
    const watch = MASTER_RULES['/nfsha.v1.Membership/WatchMembers'].check!;
    watch({ hostId: 'esx-1', localServerId: 'scvm-1', storageIp: '10.0.0.1', mgmtIp: '' }, agent1);
    assert.throws(() => watch({ hostId: 'esx-2', localServerId: '', storageIp: '', mgmtIp: '' }, agent1), { name: 'PermissionDenied' });
    const report = MASTER_RULES['/nfsha.v1.Membership/ReportRoute'].check!;
    report({ hostId: 'esx-1', route: 'remote', gateway: '10.0.0.2', targetServerId: 'scvm-2', reason: 'x' }, agent1);
    assert.throws(() => report({ hostId: 'esx-1', route: 'sideways', gateway: '', targetServerId: '', reason: '' }, agent1), { name: 'InvalidArgument' });
    assert.throws(() => report({ hostId: 'esx-1', route: 'remote', gateway: 'nope', targetServerId: '', reason: '' }, agent1), { name: 'InvalidArgument' });
    assert.throws(() => report({ hostId: 'esx-2', route: 'local', gateway: '', targetServerId: '', reason: '' }, agent1), { name: 'PermissionDenied' });
  });

  it('gives each method its roles: revokes and logins only through the follower session, status and deploy to operators', () => {
    assert.deepEqual(MASTER_RULES['/nfsha.v1.SessionMaster/Session'].roles, ['follower']);
    assert.deepEqual(MASTER_RULES['/nfsha.v1.SessionMaster/Login'].roles, ['follower']);
    assert.deepEqual(MASTER_RULES['/nfsha.v1.Deployer/Deploy'].roles, ['operator']);
    assert.ok(!MASTER_RULES['/nfsha.v1.SessionMaster/ClusterStatus'].roles.includes('follower'));
    assert.deepEqual(MASTER_RULES['/nfsha.v1.Membership/WatchMembers'].roles, ['agent']);
  });

  it('serves the gate API only to the gate of the same server', () => {
    const admit = gateRules('scvm-1')['/nfsha.v1.Gate/Admit'].check!;
    admit({ clientAddress: '10.0.0.9' }, { role: 'gate', id: 'scvm-1' });
    assert.throws(() => admit({ clientAddress: '10.0.0.9' }, { role: 'gate', id: 'scvm-2' }), { name: 'PermissionDenied' });
    assert.throws(() => admit({ clientAddress: 'ten' }, { role: 'gate', id: 'scvm-1' }), { name: 'InvalidArgument' });
    const report = gateRules('scvm-1')['/nfsha.v1.Gate/Report'].check!;
    const r = { watcherId: 1, leaseDeadlineMonotonicMs: 1, fenceSeq: 0, draining: [], clientsInFlight: [{ clientId: 'host:esx-9', calls: 2 }] };
    report(r, { role: 'gate', id: 'scvm-1' });
    assert.throws(() => report({ ...r, clientsInFlight: [{ clientId: '', calls: 1 }] }, { role: 'gate', id: 'scvm-1' }), { name: 'InvalidArgument' });
  });

  it('never throws anything but a status-carrying error on random input (fast-check)', () => {
    const rules = { ...MASTER_RULES, ...gateRules('scvm-1') };
    fc.assert(fc.property(fc.constantFrom(...Object.keys(rules)), fc.anything(), (method, message) => {
      try {
        rules[method].check?.(message, follower1);
      } catch (err) {
        // TypeErrors from odd shapes are mapped to INVALID_ARGUMENT by the edge; anything else must carry a code.
        if (!(err instanceof TypeError)) assert.equal(typeof (err as { code?: number }).code, 'number', String(err));
      }
    }), { numRuns: 2000, seed: 7 });
  });
});

describe('certificates (node-forge): identity in the subject alternative name', () => {
  it('issues certificates that name exactly one nfsha identity, signed by the CA', () => {
    const ca = createCa();
    const cert = issueCertificate(ca, { role: 'agent', id: 'esx-7' }, 30);
    const x = new X509Certificate(cert.certPem);
    assert.deepEqual(identityFromAltNames(x.subjectAltName), { role: 'agent', id: 'esx-7' });
    assert.ok(x.verify(new X509Certificate(ca.certPem).publicKey), 'signed by the CA');
    assert.ok(x.checkIssued(new X509Certificate(ca.certPem)));
    assert.equal(identityFromAltNames('URI:spiffe://nfsha/agent/a, URI:spiffe://nfsha/master/b'), undefined, 'two identities: none');
    assert.equal(identityFromAltNames('URI:spiffe://nfsha/king/a'), undefined, 'unknown role');
    assert.equal(identityFromAltNames('DNS:example.com'), undefined);
  });
});
