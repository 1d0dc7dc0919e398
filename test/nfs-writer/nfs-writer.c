/*
 * nfs-writer: an NFSv3 client built on libnfs for the end-to-end tests, made to
 * catch a *stale write*: an old version of a block landing on storage after a
 * newer version of that block was acknowledged.
 *
 * It mounts with libnfs's high-level API only to create the file and take its
 * file handle; every later call is a raw async NFSv3 WRITE / COMMIT / READ on
 * an rpc_context it owns, driven by its own poll() loop. When the connection
 * fails, or the oldest unanswered call is older than --timeout-ms, it drops
 * that connection and connects straight to the NFS port again (no remount, the
 * file handle is kept, as an ESXi client keeps its handles), retrying every
 * 200 ms, and re-sends every call that had no reply: same block, same version,
 * same data (new XIDs: the old connection's XIDs are not reused).
 *
 * usage: nfs-writer URL FILE [--blocks 16] [--block-size 4096] [--inflight 8]
 *                   [--interval-ms 0] [--unstable-pct 50] [--timeout-ms 3000] [--seed N]
 *   URL   nfs://192.168.33.2/srv/export?version=3&nfsport=2049&mountport=20048
 *         (nfsport/mountport are honoured, no portmapper is needed)
 *   FILE  name of the file in the exported directory; it is created (or
 *         truncated) and made blocks*block-size bytes long, all zeros.
 *   A third positional number is taken as --interval-ms (the old CLI).
 *
 * Workload. At most --inflight WRITEs are outstanding, each on a different
 * block: a block has at most one outstanding WRITE, and a block whose last
 * WRITE was answered but not yet committed gets no new WRITE until it is.
 * A new WRITE of block b carries version (last version of b) + 1; versions
 * start at 1. Each WRITE is FILE_SYNC or UNSTABLE (--unstable-pct, PRNG seeded
 * by --seed, default the pid). A version is *acknowledged* by a WRITE reply
 * with committed == FILE_SYNC, or by the reply to a COMMIT (whole file) that
 * was sent after that WRITE's reply arrived and returns the same verifier as
 * that reply. A COMMIT is sent whenever some block is written-but-uncommitted
 * and no COMMIT is outstanding (it does not count against --inflight). A
 * COMMIT whose verifier differs from a WRITE's (the server restarted) makes
 * the WRITE be re-sent, unacknowledged. A reply with an NFS error status is
 * logged and its call re-sent after 100 ms.
 *
 * Block layout (block b, version v, block-size bytes, at offset b*block-size):
 *   bytes [0, h)  the header, h bytes of text:  "blk %04u ver %010u file %s\n"
 *                 (block number, version, FILE as given on the command line)
 *   bytes [h, block-size)  fill: byte i of the block (i counted from the start
 *                 of the block, not of the fill) is byte (i % 8) of the 64-bit
 *                 little-endian value v*1000003 + b.
 *   A block never written is all zeros (version 0). A torn or mixed block shows
 *   as a header that does not parse or a fill that does not match the header.
 *
 * stdout, one JSON object a line (line-buffered); t is CLOCK_MONOTONIC in ms
 * with one decimal, comparable across processes and namespaces on a machine:
 *   {"ev":"start","t":T,"file":"F","blocks":N,"blockSize":S,"inflight":K,"seed":N}
 *   {"ev":"sent","blk":B,"ver":V,"t":T}   first time version V of block B is sent
 *                                         (t rounded down: no earlier than T could it reach a server)
 *   {"ev":"ack","blk":B,"ver":V,"t":T,"how":"sync"|"commit"}
 *                                         (t rounded up: by T the version was on storage)
 *   {"ev":"error","t":T,"what":"...","err":"..."}   what is one of:
 *       init, mount, open, truncate  (setting up; retried every 200 ms, logged at most once a second)
 *       parse       (the URL does not parse; exit status 2)
 *       connection  (connection dropped: failure, or a call unanswered for --timeout-ms)
 *       connect     (a connection attempt failed; logged at most once a second)
 *       write, commit, read  (an NFS error status, or a short WRITE; the call is re-sent after 100 ms)
 *       rpc         (calls rejected at the RPC level on a live connection; re-sent after 100 ms)
 *       verifier    (a COMMIT's verifier differs from a WRITE's; that version is written again)
 *       drain       (SIGTERM: outstanding writes not finished within 60 s)
 *       readback    (a block read back differs from its last acknowledged version, or could not be read)
 *   {"ev":"reconnect","t":T,"ms":DURATION}   connected again, DURATION ms after the connection was lost
 *   {"ev":"final","t":T,"versions":[v0,v1,...]}   last acknowledged version per block
 *   {"ev":"verify","ok":true|false,"blocks":N,"bad":K}
 *
 * SIGTERM/SIGINT: no new writes; every outstanding WRITE and COMMIT is
 * finished (reconnecting as needed, giving up after 60 s), "final" is
 * printed, then every block is read back with raw READs (same kind of
 * connection, same reconnecting; given 60 s, or 10 s when the drain gave up)
 * and compared with its last acknowledged version, and "verify" is printed.
 * Exit status 0 when the drain finished and every block matched, 1 otherwise,
 * 2 on bad usage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <nfsc/libnfs.h>
#include <nfsc/libnfs-raw.h>
#include <nfsc/libnfs-raw-nfs.h>

/* libnfs keeps struct nfs_fh private; libnfs 4.0 declares it in
 * include/libnfs-private.h as { int len; char *val; } (later versions only add
 * fields after these two). nfs_get_fh() returns a pointer to it. */
struct nfs_fh {
  int len;
  char *val;
};

#define NFS_PROG 100003
#define NFS_VERS 3
#define RETRY_CONNECT_MS 200.0
#define RETRY_ERROR_MS 100.0
#define DRAIN_MS 60000.0
#define VERIFY_AFTER_GIVING_UP_MS 10000.0 /* reading back when the drain already gave up */

/* ---------------------------------------------------------------- options */

static const char *url_arg, *file_arg;
static unsigned nblocks = 16, block_size = 4096, inflight_max = 8, unstable_pct = 50;
static double interval_ms = 0, timeout_ms = 3000;
static uint64_t seed;

/* ------------------------------------------------------------ small tools */

static volatile sig_atomic_t stop_requested = 0;
static void on_term(int sig) { (void)sig; stop_requested = 1; }

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}
/* Times in the log have one decimal: rounded down for "it could not have
 * happened before" (sent), up for "it had happened by then" (ack). */
static double t_floor(double ms) { return (double)(int64_t)(ms * 10.0) / 10.0; } /* ms >= 0 */
static double t_ceil(double ms) {
  int64_t d = (int64_t)(ms * 10.0);
  return (double)(d + ((double)d < ms * 10.0)) / 10.0;
}

static void json_str(const char *s) {
  putchar('"');
  for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
    if (*p == '"' || *p == '\\') printf("\\%c", *p);
    else if (*p < 0x20 || *p == 0x7f) printf("\\u%04x", *p);
    else putchar(*p);
  }
  putchar('"');
}

static void log_error(const char *what, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void log_error(const char *what, const char *fmt, ...) {
  char err[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, sizeof err, fmt, ap);
  va_end(ap);
  printf("{\"ev\":\"error\",\"t\":%.1f,\"what\":", t_floor(now_ms()));
  json_str(what);
  printf(",\"err\":");
  json_str(err);
  printf("}\n");
}

static uint64_t rng_state;
static uint64_t rng_next(void) { /* xorshift64* */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 0x2545F4914F6CDD1DULL;
}

static const char *nfs_status_str(int st) {
  const char *s = nfsstat3_to_str(st);
  return s ? s : "?";
}

/* ---------------------------------------------------------- block content */

static size_t header_len(uint32_t blk, uint32_t ver) {
  return (size_t)snprintf(NULL, 0, "blk %04u ver %010u file %s\n", blk, ver, file_arg);
}

static void make_block(unsigned char *buf, uint32_t blk, uint32_t ver) {
  if (ver == 0) {
    memset(buf, 0, block_size);
    return;
  }
  uint64_t v = (uint64_t)ver * 1000003u + blk;
  unsigned char pat[8];
  for (int i = 0; i < 8; i++) pat[i] = (unsigned char)(v >> (8 * i));
  for (size_t i = 0; i < block_size; i++) buf[i] = pat[i & 7];
  char head[600];
  int n = snprintf(head, sizeof head, "blk %04u ver %010u file %s\n", blk, ver, file_arg);
  memcpy(buf, head, (size_t)n);
}

/* ------------------------------------------------------------------ state */

enum bstate { B_IDLE, B_WRITING, B_UNCOMMITTED };
enum kind { K_WRITE, K_COMMIT, K_READ };

/* One call the writer wants answered: it is "active" until a good reply, and
 * "inflight" while it was sent on the current connection without reply. */
struct call {
  int active, inflight;
  double sent_at, retry_at;
  uint64_t token; /* tells a reply to this send from one to an older send */
};

struct block {
  enum bstate st;
  uint32_t ver;      /* version being written, or last written */
  uint32_t acked;    /* last acknowledged version */
  uint32_t sent_max; /* highest version ever sent */
  int stable;        /* stable_how asked for */
  char verf[NFS3_WRITEVERFSIZE];
  uint64_t reply_seq; /* when the UNSTABLE reply arrived (event order) */
  struct call c;      /* its WRITE, or its READ when verifying */
  int read_done, read_bad;
};

struct req { enum kind kind; uint32_t blk; uint64_t token; };

static struct block *blocks;
static struct call commit_c;
static uint64_t commit_seq;     /* event order when the outstanding COMMIT was issued */
static uint64_t event_seq;      /* orders WRITE replies against COMMIT sends */
static uint64_t next_token = 1;
static nfs_fh3 fh3;
static char *server;
static int nfsport = 2049;
static unsigned char *scratch;

enum phase { P_RUN, P_DRAIN, P_VERIFY };
static enum phase phase = P_RUN;

/* ------------------------------------------------------------- connection */

enum cstate { C_DOWN, C_CONNECTING, C_UP };
static struct {
  enum cstate st;
  struct rpc_context *rpc;
  uint64_t gen;
  double attempt_at, next_try, lost_at;
  int lost, failed;
  char fail_err[256];
  double last_fail_log;
  int call_errors;
  char call_err[256];
} conn = { .st = C_DOWN, .lost_at = -1 };

static void all_not_inflight(double retry_at) {
  for (unsigned b = 0; b < nblocks; b++)
    if (blocks[b].c.inflight) { blocks[b].c.inflight = 0; blocks[b].c.retry_at = retry_at; }
  if (commit_c.inflight) { commit_c.inflight = 0; commit_c.retry_at = retry_at; }
}

static void drop_connection(void) {
  all_not_inflight(0); /* so the cancellations the destroy reports are ignored */
  if (conn.rpc) {
    struct rpc_context *rpc = conn.rpc;
    conn.rpc = NULL;
    conn.gen++;
    rpc_destroy_context(rpc);
  }
  conn.st = C_DOWN;
}

static void connection_lost(double now, const char *why) {
  log_error("connection", "%s", why);
  if (!conn.lost) { conn.lost = 1; conn.lost_at = now; }
  drop_connection();
  conn.next_try = now;
}

static void connect_cb(struct rpc_context *rpc, int status, void *data, void *private_data) {
  (void)rpc;
  if ((uintptr_t)private_data != (uintptr_t)conn.gen || conn.st != C_CONNECTING) return;
  if (status == RPC_STATUS_SUCCESS) {
    conn.st = C_UP;
  } else {
    conn.failed = 1;
    snprintf(conn.fail_err, sizeof conn.fail_err, "%s",
             status == RPC_STATUS_ERROR && data ? (const char *)data : status == RPC_STATUS_TIMEOUT ? "timeout" : "cancelled");
  }
}

static void start_connect(double now) {
  conn.attempt_at = now;
  conn.failed = 0;
  conn.rpc = rpc_init_context();
  if (!conn.rpc) { conn.next_try = now + RETRY_CONNECT_MS; return; }
  conn.gen++;
  conn.st = C_CONNECTING;
  if (rpc_connect_port_async(conn.rpc, server, nfsport, NFS_PROG, NFS_VERS, connect_cb, (void *)(uintptr_t)conn.gen) != 0) {
    conn.failed = 1;
    snprintf(conn.fail_err, sizeof conn.fail_err, "%s", rpc_get_error(conn.rpc));
  }
}

static void connect_failed(double now) {
  if (now - conn.last_fail_log >= 1000) {
    log_error("connect", "%s:%d: %s", server, nfsport, conn.fail_err);
    conn.last_fail_log = now;
  }
  if (!conn.lost) { conn.lost = 1; conn.lost_at = conn.attempt_at; }
  drop_connection();
  conn.next_try = conn.attempt_at + RETRY_CONNECT_MS;
}

/* Moves the connection along: connects when down, notices failed or slow
 * connection attempts and calls that are older than --timeout-ms. */
static void connection_step(double now) {
  if (conn.st == C_DOWN && now >= conn.next_try) start_connect(now);
  if (conn.st == C_CONNECTING) {
    if (!conn.failed && now - conn.attempt_at > timeout_ms) {
      conn.failed = 1;
      snprintf(conn.fail_err, sizeof conn.fail_err, "no answer to NULL within %.0f ms", timeout_ms);
    }
    if (conn.failed) connect_failed(now);
  }
  if (conn.st == C_UP && conn.lost) {
    printf("{\"ev\":\"reconnect\",\"t\":%.1f,\"ms\":%.1f}\n", t_floor(now), now - conn.lost_at);
    conn.lost = 0;
  }
  if (conn.st == C_UP) {
    double oldest = now;
    for (unsigned b = 0; b < nblocks; b++)
      if (blocks[b].c.inflight && blocks[b].c.sent_at < oldest) oldest = blocks[b].c.sent_at;
    if (commit_c.inflight && commit_c.sent_at < oldest) oldest = commit_c.sent_at;
    if (now - oldest > timeout_ms) {
      char why[96];
      snprintf(why, sizeof why, "oldest call unanswered for %.0f ms", now - oldest);
      connection_lost(now, why);
    }
  }
}

/* ------------------------------------------------------------- callbacks */

/* Common handling of a reply; returns the call it is for, or NULL if it is
 * stale or is not a reply at all (then the call waits to be re-sent). */
static struct call *reply_for(struct req *r, int status, void *data, const char *what) {
  struct call *c = r->kind == K_COMMIT ? &commit_c : &blocks[r->blk].c;
  if (!c->active || !c->inflight || c->token != r->token) return NULL;
  c->inflight = 0;
  if (status != RPC_STATUS_SUCCESS) {
    /* Usually the connection failing (rpc_service then fails too, and the
     * call is re-sent after reconnecting); an RPC-level rejection on a live
     * connection is logged after rpc_service and retried in 100 ms. */
    c->retry_at = now_ms() + RETRY_ERROR_MS;
    if (status == RPC_STATUS_ERROR) {
      conn.call_errors++;
      snprintf(conn.call_err, sizeof conn.call_err, "%s: %s", what, data ? (const char *)data : "?");
    }
    return NULL;
  }
  return c;
}

static void ack(uint32_t b, const char *how) {
  blocks[b].acked = blocks[b].ver;
  blocks[b].st = B_IDLE;
  printf("{\"ev\":\"ack\",\"blk\":%u,\"ver\":%u,\"t\":%.1f,\"how\":\"%s\"}\n", b, blocks[b].ver, t_ceil(now_ms()), how);
}

static void write_cb(struct rpc_context *rpc, int status, void *data, void *private_data) {
  (void)rpc;
  struct req *r = private_data;
  struct block *bl = &blocks[r->blk];
  struct call *c = reply_for(r, status, data, "write");
  if (c) {
    WRITE3res *res = data;
    if (res->status != NFS3_OK) {
      log_error("write", "block %u version %u: %s", r->blk, bl->ver, nfs_status_str(res->status));
      c->retry_at = now_ms() + RETRY_ERROR_MS;
    } else if (res->WRITE3res_u.resok.count != block_size) {
      log_error("write", "block %u version %u: short write, %u of %u bytes", r->blk, bl->ver, res->WRITE3res_u.resok.count, block_size);
      c->retry_at = now_ms() + RETRY_ERROR_MS;
    } else {
      c->active = 0;
      if (res->WRITE3res_u.resok.committed == FILE_SYNC) {
        ack(r->blk, "sync");
      } else {
        bl->st = B_UNCOMMITTED;
        memcpy(bl->verf, res->WRITE3res_u.resok.verf, NFS3_WRITEVERFSIZE);
        bl->reply_seq = ++event_seq;
      }
    }
  }
  free(r);
}

static void commit_cb(struct rpc_context *rpc, int status, void *data, void *private_data) {
  (void)rpc;
  struct req *r = private_data;
  struct call *c = reply_for(r, status, data, "commit");
  if (c) {
    COMMIT3res *res = data;
    if (res->status != NFS3_OK) {
      log_error("commit", "%s", nfs_status_str(res->status));
      c->retry_at = now_ms() + RETRY_ERROR_MS;
    } else {
      c->active = 0;
      const char *verf = res->COMMIT3res_u.resok.verf;
      for (unsigned b = 0; b < nblocks; b++) {
        struct block *bl = &blocks[b];
        if (bl->st != B_UNCOMMITTED || bl->reply_seq >= commit_seq) continue;
        if (memcmp(bl->verf, verf, NFS3_WRITEVERFSIZE) == 0) {
          ack(b, "commit");
        } else {
          log_error("verifier", "block %u version %u: COMMIT verifier differs from the WRITE's (server restarted); writing it again", b, bl->ver);
          bl->st = B_WRITING;
          bl->c.active = 1;
          bl->c.inflight = 0;
          bl->c.retry_at = 0;
        }
      }
    }
  }
  free(r);
}

static void read_cb(struct rpc_context *rpc, int status, void *data, void *private_data) {
  (void)rpc;
  struct req *r = private_data;
  struct block *bl = &blocks[r->blk];
  struct call *c = reply_for(r, status, data, "read");
  if (c) {
    READ3res *res = data;
    if (res->status != NFS3_OK) {
      log_error("read", "block %u: %s", r->blk, nfs_status_str(res->status));
      c->retry_at = now_ms() + RETRY_ERROR_MS;
    } else {
      c->active = 0;
      bl->read_done = 1;
      make_block(scratch, r->blk, bl->acked);
      unsigned got = res->READ3res_u.resok.data.data_len;
      const char *d = res->READ3res_u.resok.data.data_val;
      if (got != block_size || memcmp(d, scratch, block_size) != 0) {
        bl->read_bad = 1;
        char head[80] = "";
        unsigned n = got < sizeof head - 1 ? got : sizeof head - 1;
        for (unsigned i = 0; i < n && d[i] != '\n'; i++) head[i] = d[i] >= 0x20 && d[i] < 0x7f ? d[i] : '.';
        log_error("readback", "block %u: expected version %u, read %u bytes starting \"%s\"", r->blk, bl->acked, got, head);
      }
    }
  }
  free(r);
}

/* ----------------------------------------------------------------- sending */

static int send_call(enum kind kind, uint32_t blk, double now) {
  struct call *c = kind == K_COMMIT ? &commit_c : &blocks[blk].c;
  struct req *r = malloc(sizeof *r);
  if (!r) return -1;
  r->kind = kind;
  r->blk = blk;
  r->token = c->token = next_token++;
  int rc;
  if (kind == K_WRITE) {
    struct block *bl = &blocks[blk];
    if (bl->ver > bl->sent_max) {
      bl->sent_max = bl->ver;
      printf("{\"ev\":\"sent\",\"blk\":%u,\"ver\":%u,\"t\":%.1f}\n", blk, bl->ver, t_floor(now));
    }
    make_block(scratch, blk, bl->ver);
    WRITE3args a;
    memset(&a, 0, sizeof a);
    a.file = fh3;
    a.offset = (uint64_t)blk * block_size;
    a.count = block_size;
    a.stable = bl->stable;
    a.data.data_len = block_size;
    a.data.data_val = (char *)scratch;
    rc = rpc_nfs3_write_async(conn.rpc, write_cb, &a, r);
  } else if (kind == K_COMMIT) {
    COMMIT3args a;
    memset(&a, 0, sizeof a);
    a.file = fh3;
    rc = rpc_nfs3_commit_async(conn.rpc, commit_cb, &a, r);
  } else {
    READ3args a;
    memset(&a, 0, sizeof a);
    a.file = fh3;
    a.offset = (uint64_t)blk * block_size;
    a.count = block_size;
    rc = rpc_nfs3_read_async(conn.rpc, read_cb, &a, r);
  }
  if (rc != 0) {
    free(r);
    return -1;
  }
  c->inflight = 1;
  c->sent_at = now;
  return 0;
}

static unsigned writes_outstanding(void) {
  unsigned n = 0;
  for (unsigned b = 0; b < nblocks; b++) n += blocks[b].st == B_WRITING;
  return n;
}

static double next_write_at = 0;

/* Sends what is due: re-sends, a COMMIT when needed, new WRITEs / READs. */
static void issue(double now) {
  if (conn.st != C_UP) return;
  for (unsigned b = 0; b < nblocks; b++) {
    struct call *c = &blocks[b].c;
    if (c->active && !c->inflight && now >= c->retry_at && send_call(phase == P_VERIFY ? K_READ : K_WRITE, b, now) != 0) goto failed;
  }
  if (phase != P_VERIFY && !commit_c.active) {
    for (unsigned b = 0; b < nblocks; b++)
      if (blocks[b].st == B_UNCOMMITTED) {
        commit_c.active = 1;
        commit_c.inflight = 0;
        commit_c.retry_at = 0;
        commit_seq = ++event_seq;
        break;
      }
  }
  if (commit_c.active && !commit_c.inflight && now >= commit_c.retry_at && send_call(K_COMMIT, 0, now) != 0) goto failed;
  if (phase == P_RUN) {
    while (writes_outstanding() < inflight_max && now >= next_write_at && !stop_requested) {
      unsigned idle[nblocks], n = 0;
      for (unsigned b = 0; b < nblocks; b++)
        if (blocks[b].st == B_IDLE) idle[n++] = b;
      if (n == 0) break;
      unsigned b = idle[rng_next() % n];
      struct block *bl = &blocks[b];
      bl->ver = bl->acked + 1;
      bl->stable = (rng_next() % 100) < unstable_pct ? UNSTABLE : FILE_SYNC;
      bl->st = B_WRITING;
      bl->c.active = 1;
      bl->c.inflight = 0;
      if (send_call(K_WRITE, b, now) != 0) goto failed;
      if (interval_ms > 0) {
        next_write_at = now + interval_ms;
        break;
      }
    }
  } else if (phase == P_VERIFY) {
    unsigned out = 0;
    for (unsigned b = 0; b < nblocks; b++) out += blocks[b].c.active;
    for (unsigned b = 0; b < nblocks && out < inflight_max; b++) {
      struct block *bl = &blocks[b];
      if (bl->read_done || bl->c.active) continue;
      bl->c.active = 1;
      bl->c.inflight = 0;
      out++;
      if (send_call(K_READ, b, now) != 0) goto failed;
    }
  }
  return;
failed:
  connection_lost(now, rpc_get_error(conn.rpc));
}

/* One turn of the event loop: connection upkeep, sending, poll, service. */
static void turn(void) {
  double now = now_ms();
  connection_step(now);
  issue(now);
  now = now_ms();
  connection_step(now);

  double wait = 20;
  if (phase == P_RUN && interval_ms > 0 && next_write_at - now < wait) wait = next_write_at - now;
  if (wait < 0) wait = 0;
  struct pollfd pfd = { .fd = -1 };
  if (conn.rpc && conn.st != C_DOWN) {
    pfd.fd = rpc_get_fd(conn.rpc);
    pfd.events = (short)rpc_which_events(conn.rpc);
  }
  int n = poll(&pfd, pfd.fd >= 0 ? 1 : 0, (int)wait + (wait > (int)wait));
  if (n < 0 && errno != EINTR) {
    perror("poll");
    exit(1);
  }
  if (n <= 0 || pfd.fd < 0 || !conn.rpc) return;
  conn.call_errors = 0;
  int rc = rpc_service(conn.rpc, pfd.revents);
  now = now_ms();
  if (conn.st == C_CONNECTING) {
    if (rc < 0 && !conn.failed) {
      conn.failed = 1;
      snprintf(conn.fail_err, sizeof conn.fail_err, "%s", rpc_get_error(conn.rpc));
    }
    return; /* connection_step handles it */
  }
  if (rc < 0) {
    connection_lost(now, rpc_get_error(conn.rpc));
  } else if (conn.call_errors > 0) {
    log_error("rpc", "%d call(s) failed on a live connection, last: %s", conn.call_errors, conn.call_err);
  }
}

/* ------------------------------------------------------------------ setup */

static int nfsport_from_url(const char *url) {
  const char *q = strchr(url, '?');
  for (const char *p = q; p && *p; p = strchr(p + 1, '&')) {
    if (strncmp(p + 1, "nfsport=", 8) == 0) return atoi(p + 9);
  }
  return 2049;
}

/* Mounts, creates FILE (empty, then blocks*block-size long) and copies its
 * file handle. Retries every 200 ms; returns -1 if stopped first. */
static int open_file(void) {
  char path[1024];
  snprintf(path, sizeof path, "/%s", file_arg);
  double last_log = -1e9;
  while (!stop_requested) {
    struct nfs_context *nfs = nfs_init_context();
    const char *what = "init";
    struct nfsfh *fh = NULL;
    if (!nfs) goto retry;
    nfs_set_timeout(nfs, (int)timeout_ms);
    struct nfs_url *u = nfs_parse_url_dir(nfs, url_arg);
    if (!u) {
      log_error("parse", "%s", nfs_get_error(nfs));
      nfs_destroy_context(nfs);
      return -2;
    }
    if (!server) server = strdup(u->server);
    what = "mount";
    int rc = nfs_mount(nfs, u->server, u->path);
    nfs_destroy_url(u);
    if (rc) goto retry;
    what = "open";
    if (nfs_open2(nfs, path, O_CREAT | O_RDWR | O_TRUNC, 0644, &fh)) goto retry;
    what = "truncate";
    if (nfs_ftruncate(nfs, fh, (uint64_t)nblocks * block_size)) goto retry;
    struct nfs_fh *h = nfs_get_fh(fh);
    fh3.data.data_len = (u_int)h->len;
    fh3.data.data_val = malloc((size_t)h->len);
    memcpy(fh3.data.data_val, h->val, (size_t)h->len);
    nfs_close(nfs, fh);
    nfs_destroy_context(nfs);
    return 0;
  retry:
    if (now_ms() - last_log >= 1000) {
      log_error(what, "%s", nfs ? nfs_get_error(nfs) : "out of memory");
      last_log = now_ms();
    }
    if (fh) nfs_close(nfs, fh);
    if (nfs) nfs_destroy_context(nfs);
    usleep((useconds_t)(RETRY_CONNECT_MS * 1000));
  }
  return -1;
}

static void usage(const char *argv0) {
  fprintf(stderr,
          "usage: %s URL FILE [--blocks 16] [--block-size 4096] [--inflight 8] [--interval-ms 0]\n"
          "       [--unstable-pct 50] [--timeout-ms 3000] [--seed N]\n"
          "  URL like nfs://192.168.33.2/srv/export?version=3&nfsport=2049&mountport=20048\n",
          argv0);
  exit(2);
}

static unsigned long num_arg(const char *argv0, const char *name, const char *s, unsigned long min, unsigned long max) {
  char *end;
  errno = 0;
  unsigned long v = strtoul(s, &end, 10);
  if (errno || *s == '\0' || *end != '\0' || v < min || v > max) {
    fprintf(stderr, "%s: bad %s: %s (want %lu..%lu)\n", argv0, name, s, min, max);
    usage(argv0);
  }
  return v;
}

int main(int argc, char **argv) {
  static const struct option opts[] = {
    { "blocks", required_argument, 0, 'b' },     { "block-size", required_argument, 0, 's' },
    { "inflight", required_argument, 0, 'i' },   { "interval-ms", required_argument, 0, 'v' },
    { "unstable-pct", required_argument, 0, 'u' }, { "timeout-ms", required_argument, 0, 't' },
    { "seed", required_argument, 0, 'r' },       { "help", no_argument, 0, 'h' },
    { 0, 0, 0, 0 },
  };
  seed = (uint64_t)getpid();
  int o;
  while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (o) {
    case 'b': nblocks = (unsigned)num_arg(argv[0], "--blocks", optarg, 1, 9999); break;
    case 's': block_size = (unsigned)num_arg(argv[0], "--block-size", optarg, 512, 1 << 20); break;
    case 'i': inflight_max = (unsigned)num_arg(argv[0], "--inflight", optarg, 1, 4096); break;
    case 'v': interval_ms = (double)num_arg(argv[0], "--interval-ms", optarg, 0, 3600000); break;
    case 'u': unstable_pct = (unsigned)num_arg(argv[0], "--unstable-pct", optarg, 0, 100); break;
    case 't': timeout_ms = (double)num_arg(argv[0], "--timeout-ms", optarg, 100, 3600000); break;
    case 'r': seed = strtoull(optarg, NULL, 0); break;
    default: usage(argv[0]);
    }
  }
  int npos = argc - optind;
  if (npos < 2 || npos > 3) usage(argv[0]);
  url_arg = argv[optind];
  file_arg = argv[optind + 1];
  if (npos == 3) interval_ms = (double)num_arg(argv[0], "INTERVAL_MS", argv[optind + 2], 0, 3600000);
  if (strlen(file_arg) > 400 || header_len(9999, 4294967295u) >= block_size) {
    fprintf(stderr, "%s: FILE name too long for --block-size %u\n", argv[0], block_size);
    return 2;
  }
  nfsport = nfsport_from_url(url_arg);
  rng_state = seed * 0x9E3779B97F4A7C15ULL + 1;

  setvbuf(stdout, NULL, _IOLBF, 0);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_term; /* no SA_RESTART: poll() returns at once */
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  blocks = calloc(nblocks, sizeof *blocks);
  scratch = malloc(block_size);
  if (!blocks || !scratch) return 1;
  printf("{\"ev\":\"start\",\"t\":%.1f,\"file\":", t_floor(now_ms()));
  json_str(file_arg);
  printf(",\"blocks\":%u,\"blockSize\":%u,\"inflight\":%u,\"seed\":%" PRIu64 "}\n", nblocks, block_size, inflight_max, seed);

  int opened = open_file();
  if (opened == -2) return 2;
  int drained = 0;
  if (opened == 0) {
    while (!stop_requested) turn();
    phase = P_DRAIN;
    double deadline = now_ms() + DRAIN_MS;
    for (;;) {
      int busy = commit_c.active;
      for (unsigned b = 0; b < nblocks; b++) busy |= blocks[b].st != B_IDLE;
      if (!busy) { drained = 1; break; }
      if (now_ms() > deadline) {
        log_error("drain", "outstanding writes not finished within %.0f s", DRAIN_MS / 1000);
        break;
      }
      turn();
    }
  }

  printf("{\"ev\":\"final\",\"t\":%.1f,\"versions\":[", t_floor(now_ms()));
  for (unsigned b = 0; b < nblocks; b++) printf("%s%u", b ? "," : "", blocks[b].acked);
  printf("]}\n");

  unsigned bad = 0;
  if (opened == 0) {
    phase = P_VERIFY;
    commit_c.active = 0;
    for (unsigned b = 0; b < nblocks; b++) {
      blocks[b].st = B_IDLE;
      blocks[b].c.active = blocks[b].c.inflight = 0;
    }
    double limit = drained ? DRAIN_MS : VERIFY_AFTER_GIVING_UP_MS;
    double deadline = now_ms() + limit;
    for (;;) {
      unsigned done = 0;
      for (unsigned b = 0; b < nblocks; b++) done += blocks[b].read_done;
      if (done == nblocks) break;
      if (now_ms() > deadline) {
        log_error("readback", "%u of %u blocks not read back within %.0f s", nblocks - done, nblocks, limit / 1000);
        break;
      }
      turn();
    }
    for (unsigned b = 0; b < nblocks; b++) bad += blocks[b].read_bad || !blocks[b].read_done;
    drop_connection();
  } else {
    bad = nblocks;
  }
  int ok = drained && bad == 0;
  printf("{\"ev\":\"verify\",\"ok\":%s,\"blocks\":%u,\"bad\":%u}\n", ok ? "true" : "false", nblocks, bad);
  return ok ? 0 : 1;
}
