import { Lab } from '../support/lab';
import { CLI } from '../support/cluster';
import { formatStatus } from '../../cli/status-command';
import { tlsDir } from '../support/pki';


/**
 * `npm run lab -- up [N] | down | status`: the DESIGN §1 topology in network
 * namespaces with a master, a follower and an agent per host, left running.
 * Logs go to /tmp/nfsha-lab. Needs root.
 */
async function main(): Promise<void> {
  const [cmd = 'status', n = '3'] = process.argv.slice(2);
  const lab = new Lab({ hosts: Number(n), prefix: 'nfsha', dir: '/tmp/nfsha-lab', holdDownMs: 30_000 });
  switch (cmd) {
    case 'up':
      await lab.up(true);
      process.stdout.write(`lab up: ${n} hosts; logs in ${lab.dir}\n\n${formatStatus(await lab.status())}\n\n`
        + `Try: ip netns exec nfsha-m node ${CLI} status --master ${lab.masterAddress} --tls ${tlsDir('operator', 'test')}\n`
        + '     ip -n nfsha-s2 link set sto down; ip -n nfsha-s2 link set priv down   # fail SCVM 2\n'
        + '     ip -n nfsha-h2 route show 192.168.33.2/32                            # host 2 rerouted\n');
      process.exit(0);
      break;
    case 'down':
      await lab.topology('down');
      process.stdout.write('lab down\n');
      break;
    case 'status': {
      process.stdout.write(await lab.topology('status'));
      try {
        process.stdout.write('\n' + formatStatus(await lab.status()) + '\n');
      } catch (err) {
        process.stdout.write(`\n(master not reachable: ${(err as Error).message.split('\n')[0]})\n`);
      }
      break;
    }
    default:
      throw new Error(`unknown lab command ${JSON.stringify(cmd)}: use up [N] | down | status`);
  }
}

main().catch((err) => {
  process.stderr.write(`lab: ${(err as Error).message}\n`);
  process.exit(1);
});
