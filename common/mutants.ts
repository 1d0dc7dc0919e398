/**
 * Known bugs, kept as switches for the deterministic simulation (DESIGN §4:
 * its power is measured by how many known bugs it finds from random seeds).
 * Each switch brings back exactly one past bug: the code path it guards is
 * that fix's revert. Nothing in the product turns one on: there is no flag,
 * environment variable or configuration key; only the simulation calls
 * `setSimulationMutants` (test/sim/), and a process that never calls it runs
 * every fix.
 */
export const MUTANTS = {
  // Past fixes, each reverted exactly (the commit that made the fix named).
  'master-grants-without-looking-again': 'a login grants after revoking or waiting out the holders it saw first, without looking again for a holder that came back meanwhile (race 1, fixed in 25f434c)',
  'gate-admits-without-stream': 'a gate admits (on its last lease) while it has no revoke stream, so nothing can stop what it admits (race 4, fixed in 25f434c)',
  'relative-lease-times': 'the follower sends its gates the milliseconds left on the lease, not a deadline, so a stall between send and receive stretches the gate\'s lease past the follower\'s (race 6, the previous release\'s protocol; the simulation swaps the follower\'s messages for it)',
  'timers-trusted-on-time': 'the master\'s wait-out and a new leader\'s grace end when their timer fires, though Node fires timers early after a stall (race 8, fixed in 25f434c)',
  'master-grace-ended-by-new-follower': 'a new follower process (no session to resume) ends a new leader\'s grace early, though it cannot speak for its predecessor\'s hung gate (seeds 19 and 1040, fixed in d686a7b)',
  'follower-fenced-keeps-session': 'a fenced follower resumes its session, so its next introduction ends a new leader\'s grace while its gate still fences (seed 784, fixed in 92917d3)',
  'follower-older-grant-lands-last': 'two admissions of one client from two new addresses: the older grant landing last takes the token back (campaign seed 5851, fixed in 1d82b74)',
  'master-logout-frees-newer-grant': 'a late or repeated logout of an older grant frees a newer grant of the same session (campaign seed 53387, fixed in ba01f0f)',
  'master-adopts-stale-claim': 'a re-introduced claim older than a grant made since is adopted, so the follower admits again under the old token (campaign seed 54107, fixed in ba01f0f)',
  'follower-grant-after-lock-wait-unchecked': 'an admission that waited for its client\'s lock grants under a session and epoch the follower has since left (campaign seeds 7651 and 13424, fixed in 34795f7)',
  'follower-release-ignores-newer-admission': 'a release logs the client out though it was admitted again (from a new address) after the admissions the release covers, so the master grants it elsewhere while the gate serves the new connection (race 2, fixed in 25f434c)',
  'master-registers-after-grant': 'a server is recorded in the registry while its session is granted, not before: a leader that dies before the write leaves a server its successor\'s grace does not wait for (race 5, fixed in 25f434c)',
  'master-over-limit-claim-unheld': 'a claim over the per-session limit is refused and forgotten, not held and revoked, so a login elsewhere does not wait for the follower to drop it (race 7, fixed in 25f434c)',
  'gate-ack-undrained-without-fence': 'a gate with no fence command acks a revoke whose calls did not drain (issue 18 §1)',
  'follower-ack-lost-layer-without-fence': 'a follower with no fence command acks a revoke after an NFS layer left with calls unknown (issue 18 §1)',
  'master-waitout-without-fence': 'the master condemns and waits out a holder that has no working fence (issue 18 §1)',
  'gate-late-admit-unfences': 'a late Admit reply\'s lease deadline lifts a follower fence, and the follower counts a layer that carried out a fence as quiesced though it serves with calls in flight (issue 18 hole a)',
  'follower-release-while-dirty': 'a release logs a client out while an NFS layer that left may still have calls in the NFS server, and a gate that stops does not wait for its drains (issue 18 hole b)',
  'master-adopts-claim-of-moved-address': 'a re-introduced claim is adopted though the address it is admitted from names another host now, so the follower serves that host as the claimed client (campaign seed 2082951979, fixed in cab2895)',
  'follower-stale-address-admits': 'the follower keeps an address\'s client after that client\'s grant ended, so a host that later uses the address is admitted as it without asking the master (issue 18 hole d)',
  'gate-stop-without-final-report': 'a gate that stops closes its stream without a final report, so the follower last heard it serving and marks itself dirty: a needless NFS fence at the next revoke (issue 18 hole g)',
  'master-revoke-lost-with-stream': 'a revoke written to a session stream the follower then replaced is never sent again, so the master condemns a healthy holder (issue 18 hole g)',
  'fence-point-no-retry': 'a fence run that fails at a lease\'s fence point is not tried again, so a silent holder\'s calls can outlive the master\'s wait-out (issue 18 §1, fences that fail)',
  'grace-ends-over-unfenced-server': 'a new leader\'s grace ends by time though a registered server that could not fence its NFS server never came back (its calls are bounded by no lease) (issue 18 §1, found by the swarm)',
  'follower-replaced-not-draining': 'clients a new session did not adopt are revoked locally but not counted as draining, so an introduction during their drain omits them (issue 18 hole c)',
  'follower-replaced-no-fence': 'a local revoke of a client a new session did not adopt ends without fencing the NFS server when an NFS layer left before acking or the hub is dirty (issue 18 hole e)',
  'follower-claims-omit-inflight': 'an introduction lists only what the follower remembers, not the clients its NFS layers report with calls in flight or whose revoke it holds unproven, and the master holds no such client, so a follower that fenced or restarted lets the next master grant them elsewhere (issue 18 hole f)',
  'follower-lazy-fence-on-lost-layer': 'an NFS layer that leaves with calls unknown makes the follower fence only at its next revoke or fence point, which a frozen follower never reaches while the master waits its lease out (issue 18, found by the swarm)',
  'master-fences-own-requester': 'a login treats an earlier, silent session of the requester\'s own server as a holder to fence or wait out: the fence agent kills the requesting SCVM, or the client is held for a confirmation of the server asking for it (a liveness bug, found by the liveness phase)',
  'follower-held-revoke-never-refenced': 'a revoke held because its fence failed stays held though a later fence works (it is neither retried nor ended by one), so the client cannot be admitted there again and its login elsewhere waits for an operator (a liveness bug, found by the liveness phase)',
  'follower-intro-hides-unaccounted': 'a follower whose NFS layer left with calls unknown and no fence since introduces itself as if complete, so a new leader ends its grace and grants clients whose calls may still run there (found by the swarm)',
  'master-grants-to-fenced-session': 'a login is granted to a session whose SCVM the fence agent killed while the login waited, so the client stays held by a dead session and is fenced again later, killing the follower that replaced it (a liveness bug, found by the liveness phase with etcd and registry faults)',
  'fence-budget-counts-drift': 'the master tells followers its whole wait-out slack past the TTL (TTL × drift + margin, 550 ms) is theirs for a fence, though a follower whose clock runs slow by the drift bound has only margin ÷ (1 + drift) of it: a fence within its timeout kills the NFS server after the client moved (found by the swarm with drift at the bound)',
  'follower-ended-lease-fence-point-dropped': 'a new session\'s lease replaces the one a fence ended, and its fence point with it, so calls that fence stopped at a hung NFS server are never fenced while the master waits the old lease out and grants their client elsewhere (found by the swarm, seed 86850814)',
  'hub-takes-stale-report': 'the follower takes a late or retried copy of an older NFS layer report over a newer one, so a final report is undone and a clean graceful stop counts as a layer that left with calls unknown (a needless fence; found by the simulation with graceful gate restarts)',
  'master-waitout-ignores-later-fence-failure': 'the master completes the wait-out of a server\'s old session though that server\'s later session reports its fence failed: a follower and gate that both died left calls in a hung NFS server, the new follower\'s start fence failed, and the client is granted elsewhere while they can still run (found by the swarm, seed 352024172)',
  'follower-start-fence-failure-forgotten': 'a new follower whose start fence failed serves as if it had worked: it acks revokes its own NFS layers drained though its predecessor\'s dead gate left calls in the NFS server, so a client the master took over from the old session at the same server moves on unproven (found by the recipe follower-and-gate-die-fence-broken)',
  'master-unfenced-restart-unflagged': 'a new follower process without a fence replaces an earlier one and serves as if that one had left nothing: a host taken over at the same server moves on once the new follower acks, and a new leader ends its grace on its word, while the dead gate\'s calls still run at the hung NFS server (found by the recipe follower-and-gate-die-fence-broken without a fence)',
  'master-ignores-refused-introduction-fencing': 'the failed fence a new follower reports in an introduction refused because its dead predecessor\'s session still lives is dropped, so the master completes that session\'s wait-out before the new follower can open a session and say so (found by the recipe follower-and-gate-die-fence-broken, seed 136)',
  'master-unaccounted-never-cleared': 'a server that introduced itself unaccounted (its start fence failed, say, on a loaded machine) keeps a new leader\'s grace waiting after a later fence made it whole, so every other server\'s logins are held until an operator confirms a fence (a liveness bug, found by nfsha dev on a loaded machine)',
  'master-fenced-restart-still-unfenced': 'a registered server whose last record says it could not fence comes back as a new follower process that fenced at start, and still holds the grace past its time, so every other server\'s logins wait for an operator (a liveness bug, found by reading the grace code)',
  'master-fenced-predecessor-unproven': 'a new follower process without a start fence is told its predecessor is unproven though the master\'s fence agent killed the whole SCVM after every earlier session last spoke, so its revokes are held, the master condemns it and fences the SCVM again, and again (a liveness bug, found by the swarm, seed 1872910914)',
  'hub-trusts-idle-report': 'a layer that leaves after any report saying "not serving, nothing in flight" counts as idle, though a renewal may have let it forward a call since (found by the swarm)',
  'gate-admit-after-release': 'an Admit reply for an admission the gate\'s own release already covered is served: a host with connections from two addresses, one reply late, the other connection closed and its release freed the client, the master granted it elsewhere, and the late reply attached here (found by the swarm, seed 488470164)',
  'follower-intro-omits-fence-dropped': 'a fenced follower introduces itself without the clients its fence dropped, though an NFS layer that has not read the fence yet still serves them on the lease it ended: a gate asleep through its session\'s condemnation woke to the leases queued before the fence and served a client a new leader had granted elsewhere (found by the swarm, seed 488438426)',
  'master-regrants-revoked-token': 'a client held at a server after its revoke there did not drain is handed back the revoked grant when that server asks for it again (its host came home), and the follower refuses a token it was told to revoke: the host stays stuck until an operator confirms a fence, though the calls drained and the fence works (a liveness bug, found by the liveness phase)',
  'master-fence-run-proves-only-silent-sessions': 'a fence agent run proves dead only the sessions that fell silent before it started, not one that opened before it and spoke until it returned: a login leaving such a holder fences the SCVM again, though it has come back up healthy since the run killed that holder (a liveness bug, found by the needless-fence check)',
  'master-grace-awaits-agent-fenced-server': 'a new leader\'s grace still awaits a server whose whole SCVM its fence agent killed after every earlier session of it spoke, when a new follower process of it introduces itself: the grace ends by time and the agent kills that healthy SCVM again (a liveness bug, found by the needless-fence check)',
  'master-grace-refences-agent-fenced-server': 'a new leader\'s grace that ends by time fences every server still awaited, also one its fence agent already killed after every session of it last spoke: the agent kills that SCVM again, often just as it came back up healthy (a liveness bug, found by the needless-fence check, seeds 398880001, 398903709 and 398911437)',
  'master-grace-fence-ignores-run-under-way': 'a new leader\'s grace that ends by time while a login\'s fence agent run against a server it awaits is under way queues a second run for that server instead of waiting for the first and looking again: it kills the SCVM again after it came back up healthy (a liveness bug, found by the needless-fence check, recipe agent-kill-in-grace-slow-agent)',
  'master-fence-runs-overlap': 'two logins leaving one silent holder at once each run the fence agent, the second without waiting for the first to end and looking again: it kills the SCVM again after it came back up healthy (a liveness bug, found by the needless-fence check)',
  'master-term-given-up-on-lapse': 'a new leader whose election lease lapsed on its own clock while it loaded the registry (a stall, then a keepalive answered before it renewed the lease) gives the term up, though the leadership never steps down: it keeps the election and never builds a term, and every call is refused as "no leader" for good (a liveness bug, found by the liveness phase, seed 398908720)',
  'election-leads-again-on-same-key': 'a leader that stepped down because its election lease was not renewed in time leads again on the same key when a late keepalive answer extends that lease: a second term with the same epoch, whose fencing tokens count from 1 again, so a client\'s token goes back (found by the swarm, seed 583294829)',
} as const;

export type MutantName = keyof typeof MUTANTS;

const active = new Set<MutantName>();

/** True when the simulation brought this bug back; always false in a product process. */
export function mutant(name: MutantName): boolean {
  return active.size > 0 && active.has(name);
}

/** For the simulation only: which known bugs to bring back (none: every fix). */
export function setSimulationMutants(names: readonly MutantName[]): void {
  active.clear();
  for (const n of names) {
    if (!(n in MUTANTS)) throw new Error(`unknown mutant ${JSON.stringify(n)}; known: ${Object.keys(MUTANTS).join(', ')}`);
    active.add(n);
  }
}
