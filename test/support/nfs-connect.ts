import * as net from 'node:net';

/**
 * One TCP connection to ADDRESS:PORT from inside a lab namespace; prints what
 * the server said (its name) or exits 1. Usage: node nfs-connect.js ADDRESS PORT TIMEOUT_MS
 */
const [address, port, timeout] = process.argv.slice(2);
let got = '';
const s = net.connect({ host: address, port: Number(port) });
s.setTimeout(Number(timeout ?? 2000), () => { process.stderr.write('timeout\n'); process.exit(1); });
s.on('data', (d) => { got += d.toString(); });
s.on('end', () => { process.stdout.write(got); process.exit(got ? 0 : 1); });
s.on('error', (e) => { process.stderr.write(`${e.message}\n`); process.exit(1); });
