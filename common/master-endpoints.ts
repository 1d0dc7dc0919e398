import * as grpc from '@grpc/grpc-js';
import { CLIENT_CHANNEL_OPTIONS } from './grpc-client';
import { channelOptions, isLoopbackAddress, masterChannelCredentials, type TlsSettings } from './tls';

/** Parses `a:1,b:2` (a flag or config value) into candidate master addresses. */
export function parseMasterList(text: string | string[]): string[] {
  const list = (Array.isArray(text) ? text : text.split(',')).map((s) => s.trim()).filter(Boolean);
  return [...new Set(list)];
}

type ClientConstructor = new (address: string, credentials: grpc.ChannelCredentials, options: grpc.ChannelOptions) => unknown;

/** A client of a service masters serve, at `address`, as `tls`: it accepts only a master's certificate. */
export function masterClient<C>(Client: ClientConstructor, address: string, tls: TlsSettings): C {
  return new Client(address, masterChannelCredentials(tls, address), channelOptions(tls, CLIENT_CHANNEL_OPTIONS)) as C;
}

/**
 * The master candidates a client knows, and which one it talks to now. After
 * a failed call it follows the leader named in the `nfsha-leader` trailer
 * ("not leader" redirect), or moves on to the next candidate.
 */
export class MasterEndpoints<C extends grpc.Client> {
  readonly addresses: string[];
  private index = 0;
  private readonly clients = new Map<string, C>();

  constructor(
    addresses: string[],
    /** Only to keep plain text on loopback when a master names the leader. */
    private readonly tls: TlsSettings,
    private readonly make: (address: string) => C,
  ) {
    if (!addresses.length) throw new Error('at least one master address is needed');
    this.addresses = [...addresses];
  }

  get current(): string {
    return this.addresses[this.index];
  }

  /** Makes a client for every candidate now, so a bad address is an error at start, not later. */
  prepare(): void {
    for (const a of this.addresses) if (!this.clients.has(a)) this.clients.set(a, this.make(a));
  }

  client(): C {
    let c = this.clients.get(this.current);
    if (!c) {
      c = this.make(this.current);
      this.clients.set(this.current, c);
    }
    return c;
  }

  /**
   * Chooses where to go next after `err`: 'redirect' to the leader a
   * candidate named, 'next' candidate, or 'same' address.
   */
  failed(err?: Partial<grpc.ServiceError>): 'redirect' | 'next' | 'same' {
    const named = err?.metadata?.get('nfsha-leader')[0]?.toString();
    // Plain text never leaves loopback, whatever a master names.
    const hint = named && (!this.tls.insecure || isLoopbackAddress(named)) ? named : undefined;
    if (hint) {
      let i = this.addresses.indexOf(hint);
      if (i < 0 && this.addresses.length < 16) i = this.addresses.push(hint) - 1;
      if (i >= 0 && i !== this.index) {
        this.index = i;
        return 'redirect';
      }
      return 'same';
    }
    if (this.addresses.length > 1 && (err?.code === undefined || err.code === grpc.status.FAILED_PRECONDITION
      || err.code === grpc.status.UNAVAILABLE || err.code === grpc.status.DEADLINE_EXCEEDED)) {
      this.index = (this.index + 1) % this.addresses.length;
      return 'next';
    }
    return 'same';
  }

  close(): void {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }
}
