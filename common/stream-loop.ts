import * as grpc from '@grpc/grpc-js';
import type { Backoff } from './backoff';
import type { Clock, TimerHandle } from './clock';

/** The parts of a grpc-js client stream the loop uses (real or simulated). */
export interface LoopStream<T> {
  on(event: 'data', listener: (msg: T) => void): unknown;
  on(event: 'error', listener: (err: grpc.ServiceError) => void): unknown;
  on(event: 'end', listener: () => void): unknown;
  cancel(): void;
}

export interface StreamLoopOptions<S extends LoopStream<T>, T> {
  clock: Clock;
  backoff: Backoff;
  /** Opens the stream on the endpoint chosen now. */
  open(): S;
  /**
   * A peer that accepts the connection but never answers (a frozen master)
   * must not hold us: without a first message this soon, the stream is given
   * up as DEADLINE_EXCEEDED. 0: wait as long as it takes.
   */
  firstAnswerMs: number;
  /** Where to go after a failure (MasterEndpoints.failed): a redirect is followed at once. */
  failed?(err: grpc.ServiceError | undefined): 'redirect' | 'next' | 'same';
  /** Every message of the current stream; `first` for its first. */
  data(stream: S, msg: T, first: boolean): void;
  /** The current stream ended (error, end or no first answer); the loop reopens it unless stopped. */
  closed(err: grpc.ServiceError | undefined, answered: boolean, retryInMs: number): void;
}

/** A DEADLINE_EXCEEDED error for a stream that never answered. */
export function noAnswer(what: string): grpc.ServiceError {
  return Object.assign(new Error(what), { code: grpc.status.DEADLINE_EXCEEDED, details: what, metadata: new grpc.Metadata() }) as grpc.ServiceError;
}

/**
 * One long-lived stream to a peer, reopened by our code when it breaks (gRPC
 * retry policies do not reopen streams): capped full-jitter backoff, "not
 * leader" redirects followed at once, and a first-answer timeout. The
 * follower's session, the agent's membership feed and the gate's revoke
 * stream are all this loop.
 */
export class StreamLoop<S extends LoopStream<T>, T> {
  private stream?: S;
  private reopenTimer?: TimerHandle;
  private stopped = false;
  /** Ends the current stream as if it failed with the given error. */
  private endCurrent?: (err?: grpc.ServiceError) => void;

  constructor(private readonly opts: StreamLoopOptions<S, T>) {}

  /** The stream open now, if any. */
  get current(): S | undefined {
    return this.stream;
  }

  start(): void {
    this.stopped = false;
    this.open();
  }

  private open(): void {
    if (this.stopped) return;
    const { clock } = this.opts;
    const stream = this.opts.open();
    this.stream = stream;
    let answered = false;
    let firstTimer: TimerHandle | undefined;
    const ended = (err?: grpc.ServiceError) => {
      if (this.stream !== stream) return;
      this.stream = undefined;
      if (firstTimer) clock.clearTimeout(firstTimer);
      const where = this.opts.failed?.(err) ?? 'same';
      const wait = where === 'redirect' ? 20 : this.opts.backoff.next();
      this.opts.closed(err, answered, wait);
      if (!this.stopped) this.reopenTimer = clock.setTimeout(() => this.open(), wait);
    };
    this.endCurrent = ended;
    if (this.opts.firstAnswerMs > 0) {
      firstTimer = clock.setTimeout(() => {
        if (answered || this.stream !== stream) return;
        stream.cancel();
        ended(noAnswer('no answer'));
      }, this.opts.firstAnswerMs);
    }
    stream.on('data', (msg: T) => {
      if (this.stream !== stream) return;
      const first = !answered;
      if (first) {
        answered = true;
        if (firstTimer) clock.clearTimeout(firstTimer);
        this.opts.backoff.reset();
      }
      this.opts.data(stream, msg, first);
    });
    stream.on('error', (err: grpc.ServiceError) => ended(err));
    stream.on('end', () => ended());
  }

  /**
   * Gives up the current stream now as one that stopped answering: it is
   * reopened like any broken one, and with several candidates at the next
   * (a CANCELLED of our own making would send us back to the same one).
   */
  abandon(why = 'stopped answering'): void {
    const stream = this.stream;
    if (!stream) return;
    this.endCurrent?.(noAnswer(why));
    stream.cancel();
  }

  stop(): void {
    this.stopped = true;
    if (this.reopenTimer) this.opts.clock.clearTimeout(this.reopenTimer);
    const s = this.stream;
    this.stream = undefined;
    s?.cancel();
  }
}
