import * as grpc from '@grpc/grpc-js';
import type { PeerCertificate } from 'node:tls';
import { NfshaError } from './errors';
import { formatIdentity, identityFromAltNames, type Role } from './identity';
import type { PeerIdentity } from './tls';

/**
 * The security edge of every nfsha gRPC server: one server
 * interceptor that, before any handler runs, refuses callers without a
 * cluster identity, callers whose role may not call the method, and messages
 * that fail validation or claim an identity the caller does not hold.
 * Handlers therefore only ever see well-formed input from allowed callers.
 */

export interface MethodRule {
  /** Roles whose certificates may call the method. */
  roles: readonly Role[];
  /**
   * Validates one inbound message (every message, on streams) and its binding
   * to the caller, e.g. a follower introducing itself under its own id only.
   * Throws an NfshaError (InvalidArgument, PermissionDenied, …).
   */
  check?: (message: unknown, caller: PeerIdentity) => void;
}

/** Rules keyed by method path, `/nfsha.v1.Gate/Admit`. */
export type EdgeRules = Record<string, MethodRule>;

export interface EdgeOptions {
  rules: EdgeRules;
  /** A plain-text server (`--insecure`, loopback only): every caller is `insecure`, roles are not checked. */
  insecure: boolean;
  /** Counts and logs a refusal. */
  refused?: (method: string, code: grpc.status, details: string) => void;
}

/** Methods outside nfsha's own services (health, reflection) are open to any cluster identity. */
const NFSHA_PREFIX = '/nfsha.';

/** A server call's transport security, as grpc-js reports it. */
export interface AuthenticatedCall {
  getAuthContext(): { transportSecurityType?: string; sslPeerCertificate?: PeerCertificate };
}

/** The identity the caller of a server call proved, as the edge saw it. */
export function callerOf(call: AuthenticatedCall, insecure: boolean): PeerIdentity | undefined {
  if (insecure) return 'insecure';
  return identityFromAltNames(call.getAuthContext().sslPeerCertificate?.subjectaltname);
}

export function edgeInterceptor(opts: EdgeOptions): grpc.ServerInterceptor {
  return (method, call) => {
    const path = method.path;
    const rule = opts.rules[path];
    let caller: PeerIdentity | undefined;
    let refused = false;
    const refuse = (code: grpc.status, details: string) => {
      if (refused) return;
      refused = true;
      opts.refused?.(path, code, details);
      call.sendStatus({ code, details, metadata: new grpc.Metadata() });
    };
    return new grpc.ServerInterceptingCall(call, {
      start: (next) => {
        next({
          onReceiveMetadata: (metadata, pass) => {
            caller = callerOf(call, opts.insecure);
            if (!caller) return refuse(grpc.status.UNAUTHENTICATED, 'the client certificate names no nfsha identity (spiffe://nfsha/<role>/<id>)');
            if (!rule) {
              if (path.startsWith(NFSHA_PREFIX)) return refuse(grpc.status.PERMISSION_DENIED, `${path} has no access rule`);
              return pass(metadata);
            }
            if (caller !== 'insecure' && !rule.roles.includes(caller.role)) {
              return refuse(grpc.status.PERMISSION_DENIED, `${formatIdentity(caller)} may not call ${path} (allowed: ${rule.roles.join(', ')})`);
            }
            pass(metadata);
          },
          onReceiveMessage: (message, pass) => {
            if (refused) return;
            try {
              rule?.check?.(message, caller!);
            } catch (err) {
              if (err instanceof NfshaError) return refuse(err.code, err.message);
              return refuse(grpc.status.INVALID_ARGUMENT, `malformed message: ${(err as Error).message}`);
            }
            pass(message);
          },
          onReceiveHalfClose: (pass) => {
            if (!refused) pass();
          },
        });
      },
    });
  };
}
