import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as path from 'node:path';
import type { TLSSocket } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import type * as protobuf from 'protobufjs';
import type { HealthImplementation } from 'grpc-health-check';
import type { EdgeRules } from './edge';
import { NfshaError, toServiceError } from './errors';
import type { Logger } from './log';
import { formatIdentity, identityFromAltNames } from './identity';
import { fromJsonBody, messageType, toCanonicalJson } from './proto-json';
import { DEFAULT_TLS_REFRESH_MS, isLoopbackAddress, type PeerIdentity, type TlsSettings } from './tls';
import { ConfigError } from './settings';

/**
 * nfsha's HTTPS JSON API, for curl: each route *is* a gRPC method. It runs
 * the very handler the gRPC server runs, behind the same edge rule (roles and
 * input checks) and the same mutual TLS, with the messages mapped to and
 * from proto3 JSON by protobufjs (proto-json.ts). So gRPC and HTTP cannot
 * say different things, and there is no second schema.
 */

type UnaryHandler = (call: object, cb: (err: unknown, reply?: object) => void) => void;
type StreamHandler = (call: object) => void;

export interface HttpRoute {
  method: 'GET' | 'POST';
  path: string;
  /** The gRPC method this route runs, `/nfsha.v1.SessionMaster/ClusterStatus`: its edge rule applies. */
  grpcMethod: string;
  /** Full proto names of the request and response messages. */
  request: string;
  response: string;
  /** A unary handler answers one JSON object; a server-streaming one, NDJSON lines. */
  unary?: UnaryHandler;
  stream?: StreamHandler;
  /** The HTTP status for a reply (default 200), e.g. 503 for a health check that is not SERVING. */
  statusOf?: (reply: object) => number;
}

export interface HttpApiOptions {
  listen: string;
  tls: TlsSettings;
  routes: HttpRoute[];
  /** The gRPC server's edge rules: the same roles and checks per method. */
  rules: EdgeRules;
  /** Largest request body, the gRPC server's max message size. */
  maxBodyBytes: number;
  log: Logger;
  /** Counts and logs a refusal, as the gRPC edge does. */
  refused?: (method: string, code: grpc.status, details: string) => void;
}

/** gRPC status → HTTP status, as Google's HTTP/JSON transcoding maps them. */
const HTTP_STATUS: Partial<Record<grpc.status, number>> = {
  [grpc.status.OK]: 200,
  [grpc.status.CANCELLED]: 499,
  [grpc.status.INVALID_ARGUMENT]: 400,
  [grpc.status.DEADLINE_EXCEEDED]: 504,
  [grpc.status.NOT_FOUND]: 404,
  [grpc.status.ALREADY_EXISTS]: 409,
  [grpc.status.PERMISSION_DENIED]: 403,
  [grpc.status.UNAUTHENTICATED]: 401,
  [grpc.status.RESOURCE_EXHAUSTED]: 429,
  [grpc.status.FAILED_PRECONDITION]: 400,
  [grpc.status.ABORTED]: 409,
  [grpc.status.OUT_OF_RANGE]: 400,
  [grpc.status.UNIMPLEMENTED]: 501,
  [grpc.status.UNAVAILABLE]: 503,
};

interface ApiError { code: grpc.status; message: string; metadata?: grpc.Metadata; httpStatus?: number }

/** A body over the size limit: RESOURCE_EXHAUSTED, as gRPC says it, but HTTP's own 413. */
class BodyTooLarge extends NfshaError {
  constructor(limit: number) { super(`the request body is larger than ${limit} bytes`, grpc.status.RESOURCE_EXHAUSTED); }
}

function asApiError(err: unknown): ApiError {
  if (err instanceof BodyTooLarge) return { code: err.code, message: err.message, httpStatus: 413 };
  if (err && typeof err === 'object' && 'code' in err && typeof (err as { code: unknown }).code === 'number') {
    const e = err as { code: grpc.status; details?: string; message?: string; metadata?: grpc.Metadata };
    return { code: e.code, message: e.details ?? e.message ?? '', metadata: e.metadata };
  }
  const s = toServiceError(err);
  return { code: s.code, message: s.details };
}

/** google.rpc.Status as proto3 JSON: what a failed call answers. */
function errorBody(e: ApiError): string {
  return `${JSON.stringify({ code: e.code, message: e.message, details: [] })}\n`;
}

function tlsFiles(dir: string) {
  return { ca: fs.readFileSync(path.join(dir, 'ca.pem')), cert: fs.readFileSync(path.join(dir, 'cert.pem')), key: fs.readFileSync(path.join(dir, 'key.pem')) };
}

function splitListen(listen: string): { host: string; port: number } {
  const i = listen.lastIndexOf(':');
  return { host: listen.slice(0, i).replace(/^\[(.*)\]$/, '$1'), port: Number(listen.slice(i + 1)) };
}

export interface HttpApi {
  /** host:port with the real port. */
  address: string;
  close(): Promise<void>;
}

export async function serveHttpApi(opts: HttpApiOptions): Promise<HttpApi> {
  const insecure = opts.tls.insecure === true;
  if (insecure && !isLoopbackAddress(opts.listen)) {
    throw new ConfigError(`--insecure (plain-text HTTP) is for loopback development only; ${opts.listen} is not a loopback address`);
  }
  const types = new Map<string, protobuf.Type>();
  const typeOf = (name: string) => {
    let t = types.get(name);
    if (!t) types.set(name, (t = messageType(name)));
    return t;
  };
  for (const r of opts.routes) { typeOf(r.request); typeOf(r.response); }
  const handle = (req: http.IncomingMessage, res: http.ServerResponse) => {
    // Whatever goes wrong in one request ends that request, never the process.
    serveRequest(req, res, opts, typeOf, insecure).catch((err: Error) => {
      opts.log.error({ ev: 'http.request.failed', path: req.url, err: err.message }, 'HTTP API request failed');
      if (res.headersSent) return void res.end();
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end(errorBody({ code: grpc.status.INTERNAL, message: err.message }));
    });
  };
  let refresh: NodeJS.Timeout | undefined;
  let server: http.Server;
  if (opts.tls.insecure) {
    server = http.createServer(handle);
  } else {
    const dir = opts.tls.dir;
    // The certificate is checked here, per request, so an unauthenticated
    // caller gets a 401 that says why instead of a failed handshake.
    const secure = https.createServer({ ...tlsFiles(dir), requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.2' }, handle);
    refresh = setInterval(() => {
      try { secure.setSecureContext({ ...tlsFiles(dir), minVersion: 'TLSv1.2' }); } catch (err) {
        opts.log.warn({ ev: 'http.tls.reload_failed', err: (err as Error).message }, 'could not re-read the TLS files; keeping the old ones');
      }
    }, opts.tls.refreshMs ?? DEFAULT_TLS_REFRESH_MS).unref();
    server = secure;
  }
  server.headersTimeout = 10_000;
  server.requestTimeout = 0; // a deploy streams for minutes
  const { host, port } = splitListen(opts.listen);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => { server.off('error', reject); resolve(); });
  });
  const bound = (server.address() as { port: number }).port;
  const address = `${host.includes(':') ? `[${host}]` : host}:${bound}`;
  return {
    address,
    close: () => new Promise<void>((resolve) => {
      if (refresh) clearInterval(refresh);
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}

function callerOf(req: http.IncomingMessage, insecure: boolean): { caller?: PeerIdentity; why?: string } {
  if (insecure) return { caller: 'insecure' };
  const socket = req.socket as TLSSocket;
  if (!socket.authorized) {
    const cert = socket.getPeerCertificate();
    const why = cert && Object.keys(cert).length ? `the client certificate was not issued by the cluster CA (${socket.authorizationError})` : 'a client certificate from the cluster CA is required (curl --cert … --key …)';
    return { why };
  }
  const caller = identityFromAltNames(socket.getPeerCertificate().subjectaltname);
  return caller ? { caller } : { why: 'the client certificate names no nfsha identity (spiffe://nfsha/<role>/<id>)' };
}

function readBody(req: http.IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        reject(new BodyTooLarge(limit));
        req.pause();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

async function serveRequest(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  opts: HttpApiOptions,
  typeOf: (name: string) => protobuf.Type,
  insecure: boolean,
): Promise<void> {
  const url = new URL(req.url ?? '/', 'https://nfsha');
  const fail = (e: ApiError) => {
    if (res.headersSent) return;
    const leader = e.metadata?.get('nfsha-leader')[0];
    res.writeHead(e.httpStatus ?? HTTP_STATUS[e.code] ?? 500, { 'content-type': 'application/json', ...(leader ? { 'nfsha-leader': String(leader) } : {}) });
    res.end(errorBody(e));
  };
  const routes = opts.routes.filter((r) => r.path === url.pathname);
  if (!routes.length) return fail({ code: grpc.status.NOT_FOUND, message: `no ${url.pathname}; the API has ${[...new Set(opts.routes.map((r) => `${r.method} ${r.path}`))].join(', ')}` });
  const route = routes.find((r) => r.method === req.method);
  if (!route) {
    res.setHeader('allow', routes.map((r) => r.method).join(', '));
    res.writeHead(405, { 'content-type': 'application/json' });
    return void res.end(errorBody({ code: grpc.status.UNIMPLEMENTED, message: `${url.pathname} takes ${routes.map((r) => r.method).join(', ')}` }));
  }
  const refuse = (code: grpc.status, message: string) => {
    opts.refused?.(route.grpcMethod, code, message);
    fail({ code, message });
  };
  const { caller, why } = callerOf(req, insecure);
  if (!caller) return refuse(grpc.status.UNAUTHENTICATED, why!);
  const rule = opts.rules[route.grpcMethod];
  if (rule && caller !== 'insecure' && !rule.roles.includes(caller.role)) {
    return refuse(grpc.status.PERMISSION_DENIED, `${formatIdentity(caller)} may not call ${route.grpcMethod} (${route.method} ${route.path}; allowed: ${rule.roles.join(', ')})`);
  }
  let request: Record<string, unknown>;
  try {
    let body: unknown = {};
    if (route.method === 'POST') {
      const text = await readBody(req, opts.maxBodyBytes);
      try { body = JSON.parse(text || '{}'); } catch (err) { throw new NfshaError(`the body is not JSON: ${(err as Error).message}`, grpc.status.INVALID_ARGUMENT); }
    } else {
      // GET parameters are fields of the request message (?service=…).
      body = Object.fromEntries(url.searchParams);
    }
    request = fromJsonBody(typeOf(route.request), body);
    rule?.check?.(request, caller);
  } catch (err) {
    const e = asApiError(err);
    opts.refused?.(route.grpcMethod, e.code, e.message);
    // The rest of an oversized body is not read: close the connection after answering.
    if (e.httpStatus === 413) res.setHeader('connection', 'close');
    return fail(e.code === grpc.status.INTERNAL ? { code: grpc.status.INVALID_ARGUMENT, message: e.message } : e);
  }
  const responseType = typeOf(route.response);
  const started = Date.now();
  const done = (code: grpc.status) => opts.log.debug({ ev: 'http.call', method: route.grpcMethod, caller: caller === 'insecure' ? caller : formatIdentity(caller), code: grpc.status[code], ms: Date.now() - started }, 'HTTP API call');
  try {
    if (route.unary) {
      route.unary({ request, getPeer: () => req.socket.remoteAddress ?? '', getAuthContext: () => authContextOf(req), metadata: new grpc.Metadata(), cancelled: false }, (err, reply) => {
        if (err) { const e = asApiError(err); done(e.code); return fail(e); }
        let body: string;
        try { body = `${JSON.stringify(toCanonicalJson(responseType, reply!))}\n`; } catch (err2) { return fail({ code: grpc.status.INTERNAL, message: (err2 as Error).message }); }
        res.writeHead(route.statusOf?.(reply!) ?? 200, { 'content-type': 'application/json' });
        res.end(body);
        done(grpc.status.OK);
      });
      return;
    }
    runStream(route.stream!, request, req, res, responseType, fail, done);
  } catch (err) {
    // A handler that throws answers this call with an error; the process goes on.
    opts.log.error({ ev: 'http.handler.failed', method: route.grpcMethod, err: (err as Error).message }, 'HTTP API handler failed');
    if (!res.headersSent) fail({ code: grpc.status.INTERNAL, message: (err as Error).message });
    else res.end();
  }
}

/** What a gRPC handler reads of its caller's TLS session (callerOf in edge.ts), for a call that came over HTTPS. */
function authContextOf(req: http.IncomingMessage): { sslPeerCertificate?: { subjectaltname?: string } } {
  const socket = req.socket as Partial<TLSSocket>;
  return { sslPeerCertificate: socket.getPeerCertificate?.() };
}

/**
 * A server-streaming handler over HTTP: one proto3 JSON object per line
 * (NDJSON). An error before the first message is an HTTP error; after it,
 * a last line `{"error": {code, message}}`.
 */
function runStream(
  handler: StreamHandler,
  request: Record<string, unknown>,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  type: protobuf.Type,
  fail: (e: ApiError) => void,
  done: (code: grpc.status) => void,
): void {
  const call = Object.assign(new EventEmitter(), {
    request,
    metadata: new grpc.Metadata(),
    cancelled: false,
    getPeer: () => req.socket.remoteAddress ?? '',
    getAuthContext: () => authContextOf(req),
    write(message: object): boolean {
      if (call.cancelled || res.writableEnded) return false;
      if (!res.headersSent) res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      return res.write(`${JSON.stringify(toCanonicalJson(type, message))}\n`);
    },
    end(): void {
      if (res.writableEnded) return;
      if (!res.headersSent) res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      res.end();
      done(grpc.status.OK);
    },
  });
  call.on('error', (err: unknown) => {
    const e = asApiError(err);
    done(e.code);
    if (!res.headersSent) return fail(e);
    if (!res.writableEnded) res.end(`${JSON.stringify({ error: { code: e.code, message: e.message, details: [] } })}\n`);
  });
  res.on('close', () => {
    if (res.writableEnded) return;
    call.cancelled = true;
    call.emit('cancelled');
  });
  handler(call);
}

/**
 * `GET /healthz[?service=…]`: grpc.health.v1's Check on the same health
 * state the gRPC server reports: 200 when SERVING, 503 otherwise. Without
 * `service`, the server as a whole.
 */
export function healthRoute(health: HealthImplementation): HttpRoute {
  let check: UnaryHandler | undefined;
  // The Check handler grpc-health-check serves, taken as it adds itself to a server.
  health.addToServer({ addService: (_definition: unknown, impl: { check: UnaryHandler }) => { check = impl.check; } } as never);
  return {
    method: 'GET',
    path: '/healthz',
    grpcMethod: '/grpc.health.v1.Health/Check',
    request: 'grpc.health.v1.HealthCheckRequest',
    response: 'grpc.health.v1.HealthCheckResponse',
    unary: check!,
    statusOf: (reply) => ((reply as { status?: string }).status === 'SERVING' ? 200 : 503),
  };
}
