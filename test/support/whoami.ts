import * as net from 'node:net';

/**
 * Stand-in for an SCVM's NFS port in the agent lab: answers every connection
 * with its server's name, so a test sees where a connection to the NFS
 * address landed. Usage: node whoami.js NAME PORT
 */
const [name, port] = process.argv.slice(2);
net.createServer((s) => {
  s.on('error', () => undefined);
  s.end(`${name}\n`);
}).listen(Number(port), '0.0.0.0');
