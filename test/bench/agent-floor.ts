// The floor under the agent's memory: a Node 20 process doing only what no
// agent can do without (one mTLS gRPC stream to the master's Membership
// service, and a timer), run with the same node and flags as the agent
// executable, so that the bench can print the agent's figure beside it.
//   node dist/test/bench/agent-floor.js MASTER TLS_DIR HOST_ID
import { membershipClientConstructor, type MembershipClient } from '../../common/membership-proto';
import { masterClient } from '../../common/master-endpoints';

const [master, dir, hostId] = process.argv.slice(2);
const client = masterClient<MembershipClient>(membershipClientConstructor(), master, { dir });
const stream = client.WatchMembers({ hostId, storageIp: '', mgmtIp: '', localServerId: '' });
stream.on('data', () => process.stdout.write('members\n'));
stream.on('error', (err) => { process.stderr.write(`${err.message}\n`); process.exit(1); });
setInterval(() => undefined, 500);
