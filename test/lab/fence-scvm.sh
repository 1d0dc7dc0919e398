#!/usr/bin/env bash
# The lab's fence agent for the master (DESIGN §4, "Fencing from outside"):
# kill every process of one SCVM from outside it (its network namespace) and
# return only once none is left, as powering the VM off would. In production
# this is a hypervisor call (power off or isolate the SCVM).
# With LOG, appends {"ev":"nfs-fenced",…,"whole":true} (CLOCK_MONOTONIC ms).
#   fence-scvm.sh PREFIX SERVER_ID [LOG]      SERVER_ID: scvm-<i>
set -uo pipefail
prefix="${1:?usage: fence-scvm.sh PREFIX SERVER_ID [LOG]}"
server="${2:?usage: fence-scvm.sh PREFIX SERVER_ID [LOG]}"
log="${3:-}"
[[ "$server" =~ ^scvm-([1-9])$ ]] || { echo "fence-scvm.sh: unknown server '$server'" >&2; exit 2; }
i="${BASH_REMATCH[1]}"
ns="$prefix-s$i"
mono() { /usr/bin/python3 -c 'import time; print("%.1f" % (time.monotonic() * 1000))'; }
started="$(mono)"
ip netns list | awk '{print $1}' | grep -qx "$ns" || { echo "fence-scvm.sh: no namespace $ns" >&2; exit 1; }
for _ in $(seq 1 300); do
	pids="$(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ')"
	live=""
	for p in $pids; do
		st="$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null || true)"
		[ -n "$st" ] && [ "$st" != "Z" ] && live="$live $p"
	done
	[ -z "$live" ] && break
	kill -KILL $live 2>/dev/null || true
	sleep 0.01
done
if [ -n "${live:-}" ]; then echo "fence-scvm.sh: processes still alive in $ns:$live" >&2; exit 1; fi
if [ -n "$log" ]; then
	printf '{"ev":"nfs-fenced","t":%s,"started":%s,"label":"gate-%s","server":"%s","whole":true}\n' "$(mono)" "$started" "$i" "$server" >>"$log"
fi
exit 0
