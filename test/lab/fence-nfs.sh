#!/usr/bin/env bash
# The lab's NFS fence command (DESIGN §4): SIGKILL the NFS server whose pid is
# in PIDFILE and return only once that process is gone, so nothing it had
# read can run afterwards. A server that is already gone counts as fenced.
# With LOG, appends {"ev":"nfs-fenced","t":…,"started":…,"label":…} with
# CLOCK_MONOTONIC milliseconds, for the checkers.
#   fence-nfs.sh PIDFILE [LOG LABEL]
set -uo pipefail
pidfile="${1:?usage: fence-nfs.sh PIDFILE [LOG LABEL]}"
log="${2:-}"
label="${3:-}"
mono() { /usr/bin/python3 -c 'import time; print("%.1f" % (time.monotonic() * 1000))'; }
started="$(mono)"
pid="$(cat "$pidfile" 2>/dev/null || true)"
if [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; then
	kill -KILL "$pid" 2>/dev/null || true
	# A stopped process dies on SIGKILL too; wait until the kernel reaped it.
	for _ in $(seq 1 500); do
		[ -e "/proc/$pid" ] || break
		state="$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || true)"
		[ "$state" = "Z" ] && break
		sleep 0.01
	done
	if [ -e "/proc/$pid" ] && [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != "Z" ]; then
		echo "fence-nfs.sh: process $pid still running" >&2
		exit 1
	fi
fi
if [ -n "$log" ]; then
	printf '{"ev":"nfs-fenced","t":%s,"started":%s,"label":"%s","pid":"%s"}\n' "$(mono)" "$started" "$label" "$pid" >>"$log"
fi
exit 0
