/*
 * nfs-writer: a long-running NFSv3 client built on libnfs, for the end-to-end
 * tests. It keeps one mount, writes numbered fixed-size records (pwrite +
 * fsync, so an acknowledged record is on stable storage), and when a call
 * fails it reconnects as a real client does and retries the same record.
 * Every acknowledged record is reported; on SIGTERM it stops and reads every
 * acknowledged record back through NFS.
 *
 * usage: nfs-writer URL FILE INTERVAL_MS
 *   URL  nfs://192.168.33.2/srv/export?version=3&nfsport=2049&mountport=20048
 * stdout, one JSON object a line:
 *   {"ev":"ack","rec":N,"t":MS}       record N is stable (t: CLOCK_MONOTONIC ms)
 *   {"ev":"error","rec":N,"t":MS,"err":"..."}
 *   {"ev":"verify","ok":true|false,"records":N,"bad":K}
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <nfsc/libnfs.h>

#define REC 64

static volatile sig_atomic_t stopping = 0;
static void on_term(int sig) { (void)sig; stopping = 1; }

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

static void record(char *buf, long n, const char *file) {
  memset(buf, '.', REC);
  int len = snprintf(buf, REC, "rec %08ld of %s", n, file);
  buf[len] = ' ';
  buf[REC - 1] = '\n';
}

static void json_err(const char *what, long n, const char *err) {
  printf("{\"ev\":\"error\",\"rec\":%ld,\"t\":%.1f,\"what\":\"%s\",\"err\":\"", n, now_ms(), what);
  for (const char *p = err ? err : "?"; *p; p++) putchar(*p == '"' || *p == '\\' ? '\'' : *p);
  printf("\"}\n");
}

struct conn { struct nfs_context *nfs; struct nfsfh *fh; };

static void disconnect(struct conn *c) {
  if (c->fh) nfs_close(c->nfs, c->fh);
  if (c->nfs) nfs_destroy_context(c->nfs);
  c->fh = NULL;
  c->nfs = NULL;
}

static int connect_to(struct conn *c, const char *url, const char *file, int flags) {
  c->nfs = nfs_init_context();
  if (!c->nfs) return -1;
  nfs_set_timeout(c->nfs, 3000);
  struct nfs_url *u = nfs_parse_url_dir(c->nfs, url);
  if (!u) { json_err("parse", -1, nfs_get_error(c->nfs)); disconnect(c); return -1; }
  int rc = nfs_mount(c->nfs, u->server, u->path);
  nfs_destroy_url(u);
  if (rc) { json_err("mount", -1, nfs_get_error(c->nfs)); disconnect(c); return -1; }
  char path[512];
  snprintf(path, sizeof path, "/%s", file);
  rc = (flags & O_CREAT) ? nfs_open2(c->nfs, path, flags, 0644, &c->fh) : nfs_open(c->nfs, path, flags, &c->fh);
  if (rc) { json_err("open", -1, nfs_get_error(c->nfs)); disconnect(c); return -1; }
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s URL FILE INTERVAL_MS\n", argv[0]);
    return 2;
  }
  const char *url = argv[1], *file = argv[2];
  long interval = atol(argv[3]);
  setvbuf(stdout, NULL, _IOLBF, 0);
  signal(SIGTERM, on_term);
  signal(SIGINT, on_term);
  signal(SIGPIPE, SIG_IGN);

  struct conn c = {0};
  long n = 0;
  char buf[REC];
  while (!stopping) {
    if (!c.nfs && connect_to(&c, url, file, O_WRONLY | O_CREAT) != 0) { usleep(200 * 1000); continue; }
    record(buf, n, file);
    if (nfs_pwrite(c.nfs, c.fh, (uint64_t)n * REC, REC, buf) != REC) { json_err("write", n, nfs_get_error(c.nfs)); disconnect(&c); continue; }
    if (nfs_fsync(c.nfs, c.fh) != 0) { json_err("fsync", n, nfs_get_error(c.nfs)); disconnect(&c); continue; }
    printf("{\"ev\":\"ack\",\"rec\":%ld,\"t\":%.1f}\n", n, now_ms());
    n++;
    if (interval > 0) usleep(interval * 1000);
  }
  disconnect(&c);

  /* Read every acknowledged record back through NFS. */
  long bad = 0;
  for (int tries = 0; tries < 50 && connect_to(&c, url, file, O_RDONLY) != 0; tries++) usleep(200 * 1000);
  if (!c.nfs) { printf("{\"ev\":\"verify\",\"ok\":false,\"records\":%ld,\"bad\":-1}\n", n); return 1; }
  char got[REC];
  for (long i = 0; i < n; i++) {
    record(buf, i, file);
    if (nfs_pread(c.nfs, c.fh, (uint64_t)i * REC, REC, got) != REC || memcmp(buf, got, REC) != 0) bad++;
  }
  disconnect(&c);
  printf("{\"ev\":\"verify\",\"ok\":%s,\"records\":%ld,\"bad\":%ld}\n", bad ? "false" : "true", n, bad);
  return bad ? 1 : 0;
}
