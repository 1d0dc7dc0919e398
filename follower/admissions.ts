import { mutant } from '../common/mutants';
import { compareTokens, type Token } from '../common/token';

/**
 * What this follower may serve: the clients its current session owns (with
 * their grant tokens), where source addresses map, and the newest token
 * revoked per client, so a login reply that arrives after its own revoke
 * admits nothing.
 */
export class Admissions {
  private readonly owned = new Map<string, Token>();
  private readonly clientOfAddress = new Map<string, string>();
  private readonly revokedUpTo = new Map<string, Token>();
  /** Counts admissions; the newest per client, so a release cannot undo one it did not cover. */
  private admissionCounter = 0;
  private readonly lastAdmission = new Map<string, number>();

  /** Records that a connection of `clientId` was admitted now; returns its sequence number. */
  admitted(clientId: string): number {
    const seq = ++this.admissionCounter;
    this.lastAdmission.set(clientId, seq);
    return seq;
  }

  /** The newest admission of `clientId` (0: none). */
  lastAdmissionOf(clientId: string): number {
    return this.lastAdmission.get(clientId) ?? 0;
  }

  clientOf(address: string): string | undefined {
    return this.clientOfAddress.get(address);
  }

  tokenOf(clientId: string): Token | undefined {
    return this.owned.get(clientId);
  }

  /** Records a grant; false when a revoke at or after this token already arrived. */
  grant(address: string, clientId: string, token: Token): boolean {
    const revoked = this.revokedUpTo.get(clientId);
    if (revoked && compareTokens(token, revoked) <= 0) return false;
    this.clientOfAddress.set(address, clientId);
    // Two admissions of one client from two new addresses run side by side
    // (each locked by its address): the older grant may land last. Tokens
    // never go back; the newer grant covers both connections.
    const held = this.owned.get(clientId);
    if (!held || compareTokens(token, held) > 0 || mutant('follower-older-grant-lands-last')) this.owned.set(clientId, token);
    return true;
  }

  revoke(clientId: string, token: Token): void {
    const prev = this.revokedUpTo.get(clientId);
    if (!prev || compareTokens(token, prev) > 0) this.revokedUpTo.set(clientId, token);
    const held = this.owned.get(clientId);
    if (held && compareTokens(held, token) <= 0) {
      this.owned.delete(clientId);
      this.forgetAddresses(clientId);
    }
  }

  release(clientId: string): boolean {
    if (!this.owned.delete(clientId)) return false;
    this.forgetAddresses(clientId);
    return true;
  }

  /** Forgets every grant (fenced, or the session is gone). */
  clear(): number {
    const n = this.owned.size;
    this.owned.clear();
    if (!mutant('follower-stale-address-admits')) this.clientOfAddress.clear();
    return n;
  }

  /**
   * Issue 18 hole d: an address names a client only while that client holds
   * a grant here. Kept longer, a connection from the address once the client
   * came back from another one (and a host took its old address) would be
   * admitted as that client without asking the master, the only one that
   * knows which host an address is now.
   */
  private forgetAddresses(clientId: string): void {
    if (mutant('follower-stale-address-admits')) return;
    for (const [address, c] of this.clientOfAddress) if (c === clientId) this.clientOfAddress.delete(address);
  }

  /** Every client admitted, with its token and the addresses it is admitted from. */
  list(): Array<{ clientId: string; token: Token; addresses: string[] }> {
    const addresses = new Map<string, string[]>();
    for (const [address, clientId] of this.clientOfAddress) {
      const list = addresses.get(clientId);
      if (list) list.push(address);
      else addresses.set(clientId, [address]);
    }
    return [...this.owned.entries()].map(([clientId, token]) => ({ clientId, token, addresses: addresses.get(clientId) ?? [] }));
  }
}
