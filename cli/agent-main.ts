#!/usr/bin/env node
// The ESXi agent's own executable (npm run build:agent → out/nfsha-agent): the
// `agent` and `probe` commands of nfsha and nothing else, so a host neither
// ships nor loads the master's, follower's, deploy, SSH or certificate-issuing
// code. Same flags, config file and exit codes as `nfsha agent`.
import { Command } from 'commander';
import { registerAgent } from './agent-command';
import { registerProbe } from './probe-command';
import { runProgram } from './run-program';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { version } = require('../../package.json') as { version: string };

export function buildAgentProgram(): Command {
  const program = new Command('nfsha-agent')
    .description('The nfsha IO Reroute agent for ESXi hosts (the agent and probe commands of nfsha).')
    .version(version)
    .exitOverride();
  registerAgent(program);
  registerProbe(program);
  for (const c of program.commands) c.exitOverride();
  return program;
}

if (require.main === module) void runProgram(buildAgentProgram(), 'nfsha-agent');
