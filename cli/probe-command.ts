import type { Command } from 'commander';
import { ConfigError } from '../common/settings';
import { normalizeIp } from '../common/address';
import { IcmpProber } from '../agent/icmp-prober';
import { intArg, opt, optDefault } from './options';

export function registerProbe(program: Command): void {
  program
    .command('probe')
    .description('Send one ICMP echo to each address, as the agent does (raw socket: root or CAP_NET_RAW), and print what answered.')
    .argument('<ip...>', 'addresses to probe')
    .addOption(opt('--interface <if>', 'bind the probe to this interface (the private link, as for the local SCVM)'))
    .addOption(optDefault('--timeout-ms <ms>', 'how long to wait for each reply', 1000).argParser(intArg))
    .action(async (ips: string[], flags) => {
      for (const ip of ips) if (!normalizeIp(ip)) throw new ConfigError(`${JSON.stringify(ip)} is not an IP address`);
      const prober = new IcmpProber(flags.interface);
      let down = 0;
      try {
        for (const ip of ips) {
          const t0 = performance.now();
          const ok = await prober.probe(ip, flags.timeoutMs);
          if (!ok) down++;
          process.stdout.write(`${ip}\t${ok ? `up ${(performance.now() - t0).toFixed(2)} ms` : 'no reply'}\n`);
        }
      } finally {
        prober.close();
      }
      if (down) process.exitCode = 3;
    });
}
