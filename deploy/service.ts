import * as fs from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { ConfigError, validate } from '../common/settings';
import type { Logger } from '../common/log';
import type { DeployerHandlers } from '../gen/nfsha/v1/Deployer';
import { deploy, deployPki } from './deploy';
import { inventorySchema } from './inventory';

export interface DeployerSettings {
  /** The bundle directory used when a request names none. */
  bundleDir: string;
  /** Where the cluster credentials are kept. */
  stateDir: string;
  /** Whether a host's agent is registered (asks the leader). */
  isRegistered: (masters: string, hostId: string) => Promise<boolean>;
  log: Logger;
}

/** nfsha.v1.Deployer: `nfsha deploy` as a call on a master. */
export function deployerHandlers(settings: DeployerSettings): DeployerHandlers {
  return {
    Deploy: (call) => {
      const req = call.request;
      const fail = (code: grpc.status, details: string) => call.emit('error', { code, details, message: details });
      let inventory;
      try {
        let parsed: unknown;
        try { parsed = JSON.parse(req.inventoryJson); } catch (err) { throw new ConfigError(`inventory_json is not valid JSON: ${(err as Error).message}`); }
        inventory = validate(inventorySchema, parsed, 'inventory');
      } catch (err) {
        return fail(grpc.status.INVALID_ARGUMENT, (err as Error).message);
      }
      const bundleDir = req.bundleDir || settings.bundleDir;
      if (!bundleDir || !fs.existsSync(`${bundleDir}/descriptor.xml`)) return fail(grpc.status.INVALID_ARGUMENT, `no bundle (descriptor.xml) at ${JSON.stringify(bundleDir)}`);
      // A master must not invent a CA: agents' certificates would be trusted by nobody.
      if (!deployPki(settings.stateDir).hasCa()) {
        return fail(grpc.status.FAILED_PRECONDITION, `no cluster CA in ${settings.stateDir}/pki on this master (copy it there, or run "nfsha init --dir ${settings.stateDir}/pki")`);
      }
      if (!req.operatorPrivateKey && !req.operatorPassword) settings.log.info({ ev: 'deploy.no_operator_credentials' }, 'deploying with the cluster key only');
      deploy({
        inventory,
        bundleDir,
        stateDir: settings.stateDir,
        operator: { privateKey: req.operatorPrivateKey ? Buffer.from(req.operatorPrivateKey) : undefined, password: req.operatorPassword || undefined },
        isRegistered: (hostId) => settings.isRegistered(inventory.masters, hostId),
        registerTimeoutMs: req.registerTimeoutMs || 30_000,
        log: settings.log,
        progress: (hostId, step) => { if (!call.cancelled) call.write({ progress: { hostId, step } }); },
      }).then((reports) => {
        for (const r of reports) call.write({ report: { ...r, error: r.error ?? '' } });
        call.end();
      }, (err) => fail(grpc.status.INTERNAL, (err as Error).message));
    },
  };
}
