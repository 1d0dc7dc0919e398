#!/bin/sh
# nfsha agent bundle installer for hosts without `esxcli software vib install`.
# POSIX sh, busybox-compatible (tar, gzip, sha256sum). Run from the unpacked
# bundle directory (descriptor.xml, payload.tgz, install.sh).
#
#   install.sh install [--root DIR] [--no-start]   install or upgrade in place
#   install.sh remove  [--root DIR] [--no-start]   stop and remove every installed file
#   install.sh verify                               check the payload against descriptor.xml
set -eu

cmd="${1:-}"; [ $# -gt 0 ] && shift
ROOT=""
START=1
while [ $# -gt 0 ]; do
  case "$1" in
    --root) ROOT="$2"; shift 2 ;;
    --no-start) START=0; shift ;;
    *) echo "install.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
HERE=$(cd "$(dirname "$0")" && pwd)
MANIFEST="$ROOT/opt/nfsha/.installed-files"
INIT="$ROOT/etc/init.d/nfsha-agent"

die() { echo "install.sh: $*" >&2; exit 1; }

field() { sed -n "s:.*<$1>\(.*\)</$1>.*:\1:p" "$HERE/descriptor.xml" | head -n 1; }

verify() {
  [ -f "$HERE/descriptor.xml" ] || die "descriptor.xml is missing"
  [ -f "$HERE/payload.tgz" ] || die "payload.tgz is missing"
  want=$(sed -n 's:.*<checksum checksum-type="sha-256">\([0-9a-f]*\)</checksum>.*:\1:p' "$HERE/descriptor.xml" | head -n 1)
  got=$(sha256sum "$HERE/payload.tgz" | cut -d ' ' -f 1)
  [ -n "$want" ] && [ "$want" = "$got" ] || die "payload checksum mismatch (descriptor $want, payload $got)"
  size=$(wc -c < "$HERE/payload.tgz" | tr -d ' ')
  grep -q "size=\"$size\"" "$HERE/descriptor.xml" || die "payload size $size does not match descriptor.xml"
}

stop_agent() {
  if [ "$START" -eq 1 ] && [ -x "$INIT" ]; then "$INIT" stop || true; fi
}

remove_files() {
  [ -f "$MANIFEST" ] || return 0
  while IFS= read -r f; do
    [ -n "$f" ] && rm -f "$ROOT/$f"
  done < "$MANIFEST"
  rm -f "$MANIFEST"
  # Empty directories the bundle created.
  for d in opt/nfsha/bin opt/nfsha/etc opt/nfsha; do rmdir "$ROOT/$d" 2>/dev/null || true; done
}

case "$cmd" in
  verify)
    verify
    echo "payload matches descriptor.xml ($(field name) $(field version))"
    ;;
  install)
    verify
    stop_agent
    # A configured host's agent.json and etc/tls are not part of the payload: upgrades keep them.
    conf="$ROOT/opt/nfsha/etc/agent.json"
    remove_files
    mkdir -p "$ROOT/opt/nfsha"
    tar -xzf "$HERE/payload.tgz" -C "${ROOT:-/}"
    tar -tzf "$HERE/payload.tgz" | grep -v '/$' > "$MANIFEST"
    echo "$(field version)" > "$ROOT/opt/nfsha/VERSION"
    echo "opt/nfsha/VERSION" >> "$MANIFEST"
    if [ "$START" -eq 1 ] && [ -f "$conf" ]; then "$INIT" start; fi
    echo "installed $(field name) $(field version)"
    ;;
  remove)
    stop_agent
    remove_files
    rm -f "$ROOT/opt/nfsha/etc/agent.json"
    # The agent's certificate and key (written by nfsha deploy).
    rm -rf "$ROOT/opt/nfsha/etc/tls"
    for d in opt/nfsha/etc opt/nfsha; do rmdir "$ROOT/$d" 2>/dev/null || true; done
    echo "removed nfsha-agent"
    ;;
  *)
    echo "usage: install.sh install|remove|verify [--root DIR] [--no-start]" >&2
    exit 2
    ;;
esac
