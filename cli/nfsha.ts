#!/usr/bin/env node
import { Command } from 'commander';
import { registerFenceNfs, runFenceNfsAlone } from './fence-nfs-command';
// `nfsha fence-nfs` runs inside a follower's fence budget: it runs and exits
// here, before the modules of the other commands below load.
if (require.main === module) runFenceNfsAlone(process.argv);
import { runProgram } from './run-program';
import { registerMaster } from './master-command';
import { registerFollower } from './follower-command';
import { registerGate } from './gate-command';
import { registerStatus } from './status-command';
import { registerFenceConfirm } from './fence-confirm-command';
import { registerMaintenance } from './maintenance-command';
import { registerDev } from './dev-command';
import { registerAgent } from './agent-command';
import { registerProbe } from './probe-command';
import { registerDeploy } from './deploy-command';
import { registerInit } from './init-command';
import { registerEtcdAuth } from './etcd-auth-command';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { version } = require('../../package.json') as { version: string };

export function buildProgram(): Command {
  const program = new Command('nfsha')
    .description('NFS access-point uniqueness and high availability for ESXi hyper-converged clusters.')
    .version(version)
    .exitOverride();
  registerMaster(program);
  registerFollower(program);
  registerGate(program);
  registerAgent(program);
  registerProbe(program);
  registerInit(program);
  registerEtcdAuth(program);
  registerDeploy(program);
  registerStatus(program);
  registerFenceConfirm(program);
  registerMaintenance(program);
  registerFenceNfs(program);
  registerDev(program);
  for (const c of program.commands) c.exitOverride();
  return program;
}

if (require.main === module) void runProgram(buildProgram(), 'nfsha');
