import { EventEmitter } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import type { Kernel, SimProcess } from './kernel';

/**
 * The simulated transport: the subset of grpc-js's client and server call API
 * nfsha uses (unary calls with deadlines and waitForReady, server streams,
 * bidi streams; errors with status codes and metadata; cancellation), on the
 * kernel's virtual time. Messages go through the real protobuf codecs, so
 * handlers see exactly what grpc-js would hand them (defaults, oneof names,
 * enum strings). test/integration/transport-contract.test.ts runs the same
 * scenarios against grpc-js and this.
 */

interface MethodDefinition {
  path: string;
  requestStream: boolean;
  responseStream: boolean;
  requestSerialize(value: unknown): Buffer;
  requestDeserialize(bytes: Buffer): unknown;
  responseSerialize(value: unknown): Buffer;
  responseDeserialize(bytes: Buffer): unknown;
}

export type ServiceDefinition = Record<string, MethodDefinition>;

type AnyHandler = (call: never, callback?: never) => void;

interface Endpoint {
  address: string;
  proc: SimProcess;
  methods: Map<string, { def: MethodDefinition; handler: AnyHandler }>;
}

export interface NetworkFaults {
  /** One-way delay for a message, ms. */
  latency(): number;
  /**
   * What happens to one unary call: delivered; its request lost (the caller
   * times out, the server never saw it); its reply lost (the server acted,
   * the caller times out); or delivered twice (a caller's retry after a lost
   * reply, which handlers must take as idempotent).
   */
  unaryFate?(): 'deliver' | 'drop-request' | 'drop-reply' | 'duplicate' | 'late-reply' | 'late-duplicate';
  /** How much later a 'late-reply' reply's status arrives than it would in order. */
  lateReplyMs?(): number;
  /** How long after the original a 'late-duplicate' copy arrives. */
  lateDuplicateMs?(): number;
}

function status(code: grpc.status, details: string, metadata = new grpc.Metadata()): grpc.ServiceError {
  return Object.assign(new Error(`${code} ${grpc.status[code]}: ${details}`), { code, details, metadata });
}

/** One direction of one connection: messages arrive in order, each after a delay, unless held by a partition. */
class Pipe {
  private lastAt = 0;
  private held: Array<() => void> = [];

  constructor(private readonly net: SimNetwork, readonly from: SimProcess, readonly to: SimProcess, private readonly conn: Conn, private readonly toServer: boolean) {}

  /** The receiving side knows the connection is gone (the server may learn later than the client: half-open). */
  private get gone(): boolean {
    return this.toServer ? this.conn.serverBroken : this.conn.broken;
  }

  send(deliver: () => void): void {
    if (this.gone) return;
    if (this.net.isHeld(this.from, this.to)) {
      this.held.push(deliver);
      return;
    }
    this.schedule(deliver);
  }

  private schedule(deliver: () => void): void {
    const k = this.net.kernel;
    const at = Math.max(k.now + this.net.faults.latency(), this.lastAt + 0.001);
    this.lastAt = at;
    k.schedule(at, () => { if (!this.gone) deliver(); }, this.to);
  }

  /** A partition healed: what it held goes on, in order (unless another partition still holds this direction). */
  release(): void {
    if (this.net.isHeld(this.from, this.to)) return;
    const held = this.held.splice(0);
    for (const d of held) this.schedule(d);
  }
}

/** A connection from a client process to an address: its calls break together. */
class Conn {
  /** The client side gave the connection up. */
  broken = false;
  /** The server side knows it is gone: at once, or after a lag (half-open), until which what the client sent still arrives. */
  serverBroken = false;
  readonly up: Pipe;
  readonly down: Pipe;
  readonly calls = new Set<CallEntry>();

  constructor(net: SimNetwork, readonly client: SimProcess, readonly endpoint: Endpoint) {
    this.up = new Pipe(net, client, endpoint.proc, this, true);
    this.down = new Pipe(net, endpoint.proc, client, this, false);
  }
}

/** A unary call whose request or reply a fault lost: its caller waits for its deadline, unless the heal ends it. */
interface LostCall {
  caller: SimProcess;
  fail(): void;
}

/** A call on a connection, as a broken connection ends it: the client at once, the server after `serverLagMs`. */
interface CallEntry {
  abort(code: grpc.status, details: string, serverLagMs: number): void;
}

/** Server side of a call (ServerUnaryCall / ServerWritableStream / ServerDuplexStream). */
class ServerCall extends EventEmitter {
  cancelled = false;
  finished = false;
  request: unknown;
  readonly metadata = new grpc.Metadata();

  constructor(private readonly toClient: (kind: 'data' | 'status', payload: unknown) => void, private readonly def: MethodDefinition) {
    super();
    // grpc-js: an 'error' emitted by the handler is the call's status.
    this.on('error', (err: Partial<grpc.ServiceError>) => {
      this.sendStatus(status(err.code ?? grpc.status.UNKNOWN, err.details ?? err.message ?? 'error', err.metadata ?? new grpc.Metadata()));
    });
  }

  getPeer(): string {
    return 'sim';
  }

  getAuthContext(): Record<string, never> {
    return {};
  }

  write(msg: unknown): boolean {
    if (this.finished || this.cancelled) return false;
    const bytes = this.def.responseSerialize(msg);
    this.toClient('data', bytes);
    return true;
  }

  end(): void {
    this.sendStatus(undefined);
  }

  sendStatus(err: grpc.ServiceError | undefined): void {
    if (this.finished || this.cancelled) return;
    this.finished = true;
    this.toClient('status', err);
    this.emit('finish');
    this.emit('close');
  }

  /** The client went away (cancel, deadline, broken connection). */
  abort(): void {
    if (this.finished || this.cancelled) return;
    this.cancelled = true;
    this.emit('cancelled');
    this.emit('close');
  }
}

/** Client side of a streaming call (ClientReadableStream / ClientDuplexStream). */
class ClientStream extends EventEmitter {
  done = false;
  constructor(private readonly onWrite: (msg: unknown) => void, private readonly onEnd: () => void, private readonly onCancel: () => void) {
    super();
  }

  write(msg: unknown): boolean {
    if (!this.done) this.onWrite(msg);
    return true;
  }

  end(): void {
    if (!this.done) this.onEnd();
  }

  cancel(): void {
    this.onCancel();
  }

  getPeer(): string {
    return 'sim';
  }
}

interface CallOptions {
  deadline?: Date | number;
}

function parseArgs(args: unknown[]): { request: unknown; metadata?: grpc.Metadata; options: CallOptions; callback?: (e: grpc.ServiceError | null, r?: unknown) => void } {
  const [request, ...rest] = args;
  let metadata: grpc.Metadata | undefined;
  let options: CallOptions = {};
  let callback: ((e: grpc.ServiceError | null, r?: unknown) => void) | undefined;
  for (const a of rest) {
    if (typeof a === 'function') callback = a as typeof callback;
    else if (a instanceof grpc.Metadata) metadata = a;
    else if (a && typeof a === 'object') options = a as CallOptions;
  }
  return { request, metadata, options, callback };
}

function timeoutOf(options: CallOptions): number | undefined {
  if (options.deadline === undefined) return undefined;
  const d = options.deadline instanceof Date ? options.deadline.getTime() : options.deadline;
  if (!Number.isFinite(d)) return undefined;
  // Deadlines are wall-clock Dates made just before the call: their distance
  // from now is the timeout the caller meant, applied on virtual time.
  return Math.max(0, d - Date.now());
}

/**
 * Every simulated endpoint and connection. A client process calls an address;
 * the call reaches the endpoint's process after a delay and its answer comes
 * back the same way. Killing a process breaks its connections; a partition
 * between two machines holds their messages until it heals (a TCP connection
 * that retransmits), and a reset breaks the connections between two processes.
 */
export class SimNetwork {
  private readonly endpoints = new Map<string, Endpoint>();
  private readonly conns = new Map<string, Conn>();
  private readonly partitions = new Set<string>();
  /** One-way partitions, `from>to` by machine: messages that way are held, the other way flows. */
  private readonly oneWay = new Set<string>();
  /**
   * Unary calls whose request or reply a fault lost, while their callers
   * still wait (nothing but the deadline tells them).
   */
  private readonly lostCalls = new Set<LostCall>();
  /** Per machine pair: when a hold between them last ended. */
  private readonly holdEnded = new Map<string, number>();
  /**
   * Faults: the next unary call of a method from a process (`${proc.name} ${method}`)
   * gets its status this many ms late (a 'late-reply', overtaken by later
   * messages on other streams).
   */
  readonly lateNext = new Map<string, number>();

  constructor(readonly kernel: Kernel, readonly faults: NetworkFaults) {}

  listen(address: string, proc: SimProcess, services: Array<[ServiceDefinition, object]>): void {
    const methods = new Map<string, { def: MethodDefinition; handler: AnyHandler }>();
    for (const [defs, handlers] of services) {
      for (const [name, def] of Object.entries(defs)) {
        const handler = (handlers as Record<string, AnyHandler>)[name];
        if (handler) methods.set(name, { def, handler: handler.bind(handlers) as AnyHandler });
      }
    }
    this.endpoints.set(address, { address, proc, methods });
  }

  /** The address stops accepting calls (its process died or restarts elsewhere). */
  unlisten(address: string): void {
    this.endpoints.delete(address);
  }

  private pairKey(a: SimProcess, b: SimProcess): string {
    const [x, y] = [a.machine.name, b.machine.name].sort();
    return `${x}|${y}`;
  }

  isHeld(from: SimProcess, to: SimProcess): boolean {
    return (this.partitions.size > 0 && this.partitions.has(this.pairKey(from, to)))
      || (this.oneWay.size > 0 && this.oneWay.has(`${from.machine.name}>${to.machine.name}`));
  }

  /**
   * Since when no message between the two processes' machines has been held
   * (a partition either way): Infinity while one holds, -Infinity if none ever did.
   */
  unheldSince(a: SimProcess, b: SimProcess): number {
    if (this.isHeld(a, b) || this.isHeld(b, a)) return Infinity;
    return this.holdEnded.get(this.pairKey(a, b)) ?? -Infinity;
  }

  private holdEnds(key: string): void {
    this.holdEnded.set(key, this.kernel.now);
  }

  /** Whether any partition, either kind, holds now. */
  anyPartition(): boolean {
    return this.partitions.size > 0 || this.oneWay.size > 0;
  }

  /** Holds every message from one machine to another until healOneWay(); the other direction flows (an asymmetric partition). */
  partitionOneWay(from: SimProcess, to: SimProcess): void {
    this.kernel.disturbedAt = this.kernel.now;
    this.oneWay.add(`${from.machine.name}>${to.machine.name}`);
  }

  healOneWay(from: SimProcess, to: SimProcess): void {
    this.kernel.disturbedAt = this.kernel.now;
    if (!this.oneWay.delete(`${from.machine.name}>${to.machine.name}`)) return;
    this.holdEnds(this.pairKey(from, to));
    for (const c of this.conns.values()) {
      if (this.pairKey(c.client, c.endpoint.proc) === this.pairKey(from, to)) { c.up.release(); c.down.release(); }
    }
  }

  /** Holds every message between two machines until heal(). */
  partition(a: SimProcess, b: SimProcess): void {
    this.kernel.disturbedAt = this.kernel.now;
    this.partitions.add(this.pairKey(a, b));
  }

  heal(a: SimProcess, b: SimProcess): void {
    this.kernel.disturbedAt = this.kernel.now;
    if (!this.partitions.delete(this.pairKey(a, b))) return;
    this.holdEnds(this.pairKey(a, b));
    for (const c of this.conns.values()) {
      if (this.pairKey(c.client, c.endpoint.proc) === this.pairKey(a, b)) { c.up.release(); c.down.release(); }
    }
  }

  healAll(): void {
    this.kernel.disturbedAt = this.kernel.now;
    for (const key of this.partitions) this.holdEnds(key);
    for (const d of this.oneWay) this.holdEnds(d.split('>').sort().join('|'));
    this.partitions.clear();
    this.oneWay.clear();
    for (const c of this.conns.values()) { c.up.release(); c.down.release(); }
  }

  /**
   * The heal ends the calls a fault lost: each caller still waiting hears
   * UNAVAILABLE now (its connection reset), as it would from a transport
   * that noticed, and asks again on the healed network. Left to their
   * deadlines, they carried the fault past the heal: a follower's Login
   * lost 45 ms before it held its host's admission for the whole 10 s
   * admit deadline, and the liveness check failed (seed 398921287).
   * Returns how many ended.
   */
  endLostCalls(): number {
    const lost = [...this.lostCalls].filter((c) => !c.caller.dead);
    this.lostCalls.clear();
    for (const c of lost) c.fail();
    return lost.length;
  }

  /** Breaks every connection touching `proc` (its process died), after a delay for the peers to notice. */
  breakAll(proc: SimProcess, code = grpc.status.UNAVAILABLE, details = 'Connection dropped'): void {
    this.kernel.disturbedAt = this.kernel.now;
    for (const [key, c] of this.conns) {
      if (c.client === proc || c.endpoint.proc === proc) this.breakConn(key, c, code, details);
    }
  }

  /**
   * Resets the connections from `client` to `address` (a transport drop).
   * With `serverLagMs`, only the client notices at once (it timed the
   * connection out, say): the server goes on receiving what was already on
   * its way, and ends its side of the calls only after the lag, while the
   * client may already have opened new streams (old-stream messages after
   * a new stream opened).
   */
  reset(client: SimProcess, address: string, serverLagMs = 0): void {
    this.kernel.disturbedAt = this.kernel.now;
    const key = `${client.name}->${address}`;
    const c = this.conns.get(key);
    if (c) this.breakConn(key, c, grpc.status.UNAVAILABLE, 'Connection dropped', serverLagMs);
  }

  private breakConn(key: string, c: Conn, code: grpc.status, details: string, serverLagMs = 0): void {
    if (this.conns.get(key) === c) this.conns.delete(key);
    c.broken = true;
    if (serverLagMs <= 0) c.serverBroken = true;
    else this.kernel.schedule(this.kernel.now + serverLagMs, () => { c.serverBroken = true; });
    for (const call of [...c.calls]) call.abort(code, details, serverLagMs);
    c.calls.clear();
  }

  private reachable(client: SimProcess, address: string): Endpoint | undefined {
    const e = this.endpoints.get(address);
    if (!e || e.proc.dead) return undefined;
    return e;
  }

  private connOf(client: SimProcess, e: Endpoint): Conn {
    const key = `${client.name}->${e.address}`;
    let c = this.conns.get(key);
    if (!c || c.broken || c.endpoint !== e) {
      c = new Conn(this, client, e);
      this.conns.set(key, c);
    }
    return c;
  }

  /** A client stub for `defs` at `address`, used from process `client` (the shape grpc-js clients have). */
  client<C>(client: SimProcess, address: string, defs: ServiceDefinition): C {
    const stub: Record<string, unknown> = { close: () => undefined };
    for (const [name, def] of Object.entries(defs)) {
      if (!def.requestStream && !def.responseStream) stub[name] = (...args: unknown[]) => this.unary(client, address, name, def, args);
      else stub[name] = (...args: unknown[]) => this.stream(client, address, name, def, args);
    }
    return stub as C;
  }

  /** Runs `fn` on the client's process after a delay (an answer nobody carried over a connection). */
  private later(client: SimProcess, fn: () => void): void {
    this.kernel.schedule(this.kernel.now + this.faults.latency(), fn, client);
  }

  private unary(client: SimProcess, address: string, name: string, def: MethodDefinition, args: unknown[]): { cancel(): void } {
    const { request, metadata, options, callback } = parseArgs(args);
    const cb = callback ?? (() => undefined);
    const timeout = timeoutOf(options);
    const waitForReady = metadata?.getOptions().waitForReady === true;
    let done = false;
    let serverCall: ServerCall | undefined;
    let entry: CallEntry | undefined;
    let conn: Conn | undefined;
    let lost: LostCall | undefined;
    const finish = (err: grpc.ServiceError | null, res?: unknown) => {
      if (done) return;
      done = true;
      if (entry) conn?.calls.delete(entry);
      if (lost) this.lostCalls.delete(lost);
      cb(err, res);
    };
    const bytes = def.requestSerialize(request);
    if (timeout !== undefined) {
      this.kernel.schedule(this.kernel.now + timeout, () => {
        if (done) return;
        finish(status(grpc.status.DEADLINE_EXCEEDED, 'Deadline exceeded'));
        if (serverCall && conn) conn.up.send(() => serverCall!.abort());
      }, client, 'timer');
    }
    let retryMs = 100;
    const attempt = () => {
      if (done) return;
      const e = this.reachable(client, address);
      if (!e) {
        // Unreachable: fail fast, or (waitForReady) try again until the
        // deadline, as a channel reconnects: 100 ms growing 1.6x to 1 s.
        if (waitForReady) {
          this.kernel.schedule(this.kernel.now + retryMs * this.kernel.rng.between(0.8, 1.2), attempt, client, 'timer');
          retryMs = Math.min(1000, retryMs * 1.6);
        } else {
          this.later(client, () => finish(status(grpc.status.UNAVAILABLE, `No connection established to ${address}`)));
        }
        return;
      }
      const method = e.methods.get(name);
      conn = this.connOf(client, e);
      const c = conn;
      entry = { abort: (code, details, lag) => { this.later(client, () => finish(status(code, details))); if (serverCall) this.kernel.schedule(this.kernel.now + lag, () => serverCall!.abort(), e.proc); } };
      c.calls.add(entry);
      c.up.send(() => {
        if (done) return;
        if (!method) return void c.down.send(() => finish(status(grpc.status.UNIMPLEMENTED, `${def.path} is not implemented`)));
        // A fault may have asked for this reply to come late (lateNext).
        const lateKey = `${client.name} ${name}`;
        const forcedLateMs = this.lateNext.get(lateKey);
        if (forcedLateMs !== undefined) this.lateNext.delete(lateKey);
        const fate = forcedLateMs !== undefined ? 'late-reply' : this.faults.unaryFate?.() ?? 'deliver';
        if (fate === 'drop-request' || fate === 'drop-reply') {
          lost = { caller: client, fail: () => this.later(client, () => finish(status(grpc.status.UNAVAILABLE, 'Connection reset (the network healed)'))) };
          this.lostCalls.add(lost);
        }
        if (fate === 'drop-request') return;
        const handle = (answer: boolean) => {
          const call = new ServerCall((kind, payload) => {
            // A unary handler answers through its callback, never through these.
            if (kind === 'status' && payload && answer) c.down.send(() => finish(payload as grpc.ServiceError));
          }, def);
          if (answer) serverCall = call;
          call.request = def.requestDeserialize(bytes);
          (method.handler as unknown as (call: ServerCall, cb: (e: Partial<grpc.ServiceError> | null, r?: unknown) => void) => void)(call, (err, res) => {
            if (call.cancelled) return;
            call.finished = true;
            if (!answer || fate === 'drop-reply') return;
            // A unary call completes on its status; that status may arrive
            // apart from, and after, messages sent later on other streams.
            const deliver = fate === 'late-reply'
              ? (fn: () => void) => this.kernel.schedule(this.kernel.now + (forcedLateMs ?? this.faults.lateReplyMs?.() ?? 500), fn, client)
              : (fn: () => void) => c.down.send(fn);
            if (err) {
              const st = status(err.code ?? grpc.status.UNKNOWN, err.details ?? err.message ?? 'error', err.metadata ?? new grpc.Metadata());
              deliver(() => finish(st));
            } else {
              const out = def.responseSerialize(res);
              deliver(() => finish(null, def.responseDeserialize(out)));
            }
          });
        };
        handle(true);
        // The duplicate arrives a moment later and its answer is lost.
        if (fate === 'duplicate') c.up.send(() => handle(false));
        // A late duplicate: a copy of the request that was held up (a
        // congested path, a caller's retry whose original was only slow)
        // arrives long after the original was answered, perhaps after the
        // caller moved on; the server handles it again, its answer lost.
        if (fate === 'late-duplicate') this.kernel.schedule(this.kernel.now + (this.faults.lateDuplicateMs?.() ?? 500), () => handle(false), e.proc);
      });
    };
    attempt();
    return { cancel: () => finish(status(grpc.status.CANCELLED, 'Cancelled on client')) };
  }

  private stream(client: SimProcess, address: string, name: string, def: MethodDefinition, args: unknown[]): ClientStream {
    const { request, metadata } = parseArgs(args);
    const waitForReady = metadata?.getOptions().waitForReady === true;
    let serverCall: ServerCall | undefined;
    let conn: Conn | undefined;
    let entry: CallEntry | undefined;
    const pendingWrites: Buffer[] = [];
    let pendingEnd = false;
    let started = false;
    const stream: ClientStream = new ClientStream(
      (msg) => {
        const bytes = def.requestSerialize(msg);
        if (!started) return void pendingWrites.push(bytes);
        conn!.up.send(() => {
          if (serverCall && !serverCall.cancelled && !serverCall.finished) serverCall.emit('data', def.requestDeserialize(bytes));
        });
      },
      () => {
        if (!started) return void (pendingEnd = true);
        conn!.up.send(() => { if (serverCall && !serverCall.cancelled) serverCall.emit('end'); });
      },
      () => close(status(grpc.status.CANCELLED, 'Cancelled on client'), true),
    );
    const close = (err: grpc.ServiceError | undefined, tellServer: boolean) => {
      if (stream.done) return;
      stream.done = true;
      if (entry) conn?.calls.delete(entry);
      if (tellServer && serverCall && conn && !conn.broken) {
        const call = serverCall;
        const c = conn;
        // Until the cancel arrives, a connection that breaks (the process
        // cancelled, then exited) must still end the server's call, as a
        // closed TCP connection does.
        const cancelling: CallEntry = { abort: (_code, _details, lag) => this.kernel.schedule(this.kernel.now + lag, () => call.abort(), c.endpoint.proc) };
        c.calls.add(cancelling);
        c.up.send(() => { c.calls.delete(cancelling); call.abort(); });
      }
      // grpc-js's order: error (if any), status, end, close.
      if (err) stream.emit('error', err);
      stream.emit('status', { code: err?.code ?? grpc.status.OK, details: err?.details ?? 'OK', metadata: err?.metadata ?? new grpc.Metadata() });
      stream.emit('end');
      stream.emit('close');
    };
    let retryMs = 100;
    const attempt = () => {
      if (stream.done) return;
      const e = this.reachable(client, address);
      if (!e) {
        if (waitForReady) {
          this.kernel.schedule(this.kernel.now + retryMs * this.kernel.rng.between(0.8, 1.2), attempt, client, 'timer');
          retryMs = Math.min(1000, retryMs * 1.6);
        } else {
          this.later(client, () => close(status(grpc.status.UNAVAILABLE, `No connection established to ${address}`), false));
        }
        return;
      }
      const method = e.methods.get(name);
      conn = this.connOf(client, e);
      const c = conn;
      started = true;
      entry = {
        abort: (code, details, lag) => {
          this.later(client, () => close(status(code, details), false));
          // The server learns after the lag; a call it has not even seen yet
          // (its start still on the way) is ended when it arrives after that.
          this.kernel.schedule(this.kernel.now + lag, () => serverCall?.abort(), e.proc);
        },
      };
      c.calls.add(entry);
      c.up.send(() => {
        if (stream.done) return;
        if (!method) return void c.down.send(() => close(status(grpc.status.UNIMPLEMENTED, `${def.path} is not implemented`), false));
        const call = new ServerCall((kind, payload) => {
          if (kind === 'data') {
            const bytes = payload as Buffer;
            c.down.send(() => { if (!stream.done) stream.emit('data', def.responseDeserialize(bytes)); });
          } else {
            c.down.send(() => close(payload as grpc.ServiceError | undefined, false));
          }
        }, def);
        serverCall = call;
        if (!def.requestStream) call.request = def.requestDeserialize(def.requestSerialize(request));
        (method.handler as unknown as (call: ServerCall) => void)(call);
      });
      for (const bytes of pendingWrites.splice(0)) c.up.send(() => { if (serverCall && !serverCall.cancelled && !serverCall.finished) serverCall.emit('data', def.requestDeserialize(bytes)); });
      if (pendingEnd) c.up.send(() => { if (serverCall && !serverCall.cancelled) serverCall.emit('end'); });
    };
    attempt();
    return stream;
  }
}
