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
# Alive: its stat is readable and it is neither a zombie nor dead. One read, so
# a supervisor reaping the process between two looks cannot make it seem alive
# (that race failed a fence in CI: "process … still running" after 50 ms).
alive() {
	local rest state
	read -r _ rest 2>/dev/null <"/proc/$1/stat" || return 1
	state="${rest##*) }"
	state="${state%% *}"
	[ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}
started="$(mono)"
pid="$(cat "$pidfile" 2>/dev/null || true)"
# The first line only: a server that writes its pid file in place (no
# truncation) over a longer pid leaves the old one's tail on a second line
# (a CI run read "pid\ntail", killed nothing, and logged broken JSON).
pid="${pid%%$'\n'*}"
# Something else than a pid is no proof that nothing runs: fail, not "gone".
if [ -n "$pid" ] && ! [[ "$pid" =~ ^[0-9]+$ ]]; then
	echo "fence-nfs.sh: $pidfile does not hold a pid: $pid" >&2
	exit 1
fi
# Chaos faults (test/support/chaos.ts): PIDFILE.fault holding "fail" makes
# this fence fail without killing anything; "slow" makes it take 400 ms of
# its 1,000 ms budget before the kill.
case "$(cat "$pidfile.fault" 2>/dev/null || true)" in
fail) echo "fence-nfs.sh: failing on purpose ($pidfile.fault)" >&2; exit 1 ;;
slow) sleep 0.4 ;;
esac
if [[ "$pid" =~ ^[0-9]+$ ]] && alive "$pid"; then
	kill -KILL "$pid" 2>/dev/null || true
	# A stopped process dies on SIGKILL too; wait until it is a zombie or reaped.
	for _ in $(seq 1 500); do
		alive "$pid" || break
		sleep 0.01
	done
	if alive "$pid"; then
		echo "fence-nfs.sh: process $pid still running" >&2
		exit 1
	fi
fi
if [ -n "$log" ]; then
	printf '{"ev":"nfs-fenced","t":%s,"started":%s,"label":"%s","pid":"%s"}\n' "$(mono)" "$started" "$label" "$pid" >>"$log"
fi
exit 0
