// npm run build:bundle — the agent as an ESXi VIB-like bundle: descriptor.xml
// (name, version, vendor, community acceptance, live install/remove, payload
// size and sha-256), payload.tgz (the executable, init script, firewall rule,
// config template), packed as a .vib (ar archive) and as a directory with
// install.sh for hosts without `esxcli software`.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(root, 'out');
const { version } = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const exe = path.join(out, 'nfsha-agent');
if (!fs.existsSync(exe)) throw new Error('out/nfsha-agent is missing: run npm run build:agent first');

const name = 'nfsha-agent';
const vibVersion = `${version}-1`;
const bundleDir = path.join(out, `${name}-${version}`);
const stage = path.join(out, 'stage');
fs.rmSync(bundleDir, { recursive: true, force: true });
fs.rmSync(stage, { recursive: true, force: true });

const payloadFiles = {
  'opt/nfsha/bin/nfsha-agent': [exe, 0o755],
  'opt/nfsha/etc/agent.json.template': [path.join(root, 'build/esxi/agent.json.template'), 0o644],
  'etc/init.d/nfsha-agent': [path.join(root, 'build/esxi/nfsha-agent.init'), 0o755],
  'etc/vmware/firewall/nfsha.xml': [path.join(root, 'build/esxi/nfsha-firewall.xml'), 0o644],
};
for (const [rel, [src, mode]] of Object.entries(payloadFiles)) {
  const dst = path.join(stage, rel);
  fs.mkdirSync(path.dirname(dst), { recursive: true });
  fs.copyFileSync(src, dst);
  fs.chmodSync(dst, mode);
}
fs.mkdirSync(bundleDir, { recursive: true });
const payload = path.join(bundleDir, 'payload.tgz');
// Reproducible: fixed owner and mtime, sorted names.
execFileSync('tar', ['--sort=name', '--owner=0', '--group=0', '--numeric-owner', '--mtime=@0', '-czf', payload, '-C', stage, 'opt', 'etc']);
const payloadBytes = fs.readFileSync(payload);
const sha256 = createHash('sha256').update(payloadBytes).digest('hex');

const descriptor = `<?xml version="1.0" encoding="utf-8"?>
<vib version="5.0">
  <type>bootbank</type>
  <name>${name}</name>
  <version>${vibVersion}</version>
  <vendor>nfsha</vendor>
  <summary>nfsha IO Reroute agent</summary>
  <description>Keeps the host route to the NFS address (192.168.33.2) pointed at a healthy storage VM.</description>
  <release-date>${new Date(0).toISOString()}</release-date>
  <urls/>
  <relationships><depends/><conflicts/><replaces/><provides/><compatibleWith/></relationships>
  <software-tags/>
  <system-requires><maintenance-mode>false</maintenance-mode></system-requires>
  <file-list>
${Object.keys(payloadFiles).map((f) => `    <file>${f}</file>`).join('\n')}
  </file-list>
  <acceptance-level>community</acceptance-level>
  <live-install-allowed>true</live-install-allowed>
  <live-remove-allowed>true</live-remove-allowed>
  <cimom-restart>false</cimom-restart>
  <stateless-ready>true</stateless-ready>
  <overlay>false</overlay>
  <payloads>
    <payload name="payload" type="tgz" size="${payloadBytes.length}"><checksum checksum-type="sha-256">${sha256}</checksum></payload>
  </payloads>
</vib>
`;
fs.writeFileSync(path.join(bundleDir, 'descriptor.xml'), descriptor);
fs.copyFileSync(path.join(root, 'build/esxi/install.sh'), path.join(bundleDir, 'install.sh'));
fs.chmodSync(path.join(bundleDir, 'install.sh'), 0o755);

/** An ar archive (the .vib container): descriptor, signature, payload. */
function ar(members) {
  const parts = [Buffer.from('!<arch>\n')];
  for (const [member, data] of members) {
    const header = `${(member + '/').padEnd(16)}${'0'.padEnd(12)}${'0'.padEnd(6)}${'0'.padEnd(6)}${'100644'.padEnd(8)}${String(data.length).padEnd(10)}\`\n`;
    parts.push(Buffer.from(header, 'latin1'), data);
    if (data.length % 2) parts.push(Buffer.from('\n'));
  }
  return Buffer.concat(parts);
}
const vib = path.join(out, `${name}-${vibVersion}.vib`);
fs.writeFileSync(vib, ar([['descriptor.xml', Buffer.from(descriptor)], ['sig.pkcs7', Buffer.alloc(0)], ['payload', payloadBytes]]));
execFileSync('tar', ['-czf', path.join(out, `${name}-${version}.tar.gz`), '-C', out, path.basename(bundleDir)]);
fs.rmSync(stage, { recursive: true, force: true });
console.log(`built ${path.relative(root, vib)} (${(fs.statSync(vib).size / 2 ** 20).toFixed(1)} MiB) and ${path.relative(root, bundleDir)}/ with install.sh; payload sha-256 ${sha256.slice(0, 16)}…`);
