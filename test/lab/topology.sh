#!/usr/bin/env bash
# Network-namespace lab emulating N ESXi hosts, their storage VMs (SCVMs),
# a storage and a management network, and a control-plane master.
#
#   topology.sh up [N]   build the lab (N hosts, default 3, max 9); runs down first
#   topology.sh down     remove every namespace of this lab (idempotent)
#   topology.sh status   show each namespace with its addresses and routes
#
# Env: NFSHA_LAB_PREFIX (default "nfsha") prefixes every namespace name.
# See README.md beside this file for the addressing plan.
set -euo pipefail

P="${NFSHA_LAB_PREFIX:-nfsha}"
PROG="${0##*/}"

die() { echo "$PROG: $*" >&2; exit 1; }

preflight() {
	command -v ip >/dev/null 2>&1 || die "the 'ip' command (iproute2) is missing"
	[ "$(id -u)" -eq 0 ] || die "must run as root (network namespaces need CAP_SYS_ADMIN)"
	[[ "$P" =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]*$ ]] || die "bad NFSHA_LAB_PREFIX '$P' (use letters, digits, _ . -)"
}

# Namespaces of this lab only: exactly ${P}-sw, ${P}-m, ${P}-h<d>, ${P}-s<d>
# (so a lab with prefix "nfsha" never touches one with prefix "nfsha-x").
lab_namespaces() {
	local re="^${P//./\\.}-(sw|m|nfs|h[1-9]|s[1-9])\$"
	ip netns list 2>/dev/null | awk '{print $1}' | grep -E "$re" || true
}

# Run a shell snippet inside a namespace (one fork for many sysctls).
nsh() { local ns="$1"; shift; ip netns exec "$ns" sh -c "$*"; }

# sysctl write that tolerates a missing key (e.g. ping_group_range on old kernels)
sc() { printf 'echo %s > /proc/sys/%s 2>/dev/null || true; ' "'$2'" "${1//.//}"; }

cmd_down() {
	local ns pids left
	for ns in $(lab_namespaces); do
		# Processes left running inside would keep the namespace (and its
		# veths) alive after the name is gone: end them, by pid.
		pids="$(ip netns pids "$ns" 2>/dev/null || true)"
		if [ -n "$pids" ]; then
			kill $pids 2>/dev/null || true
			for _ in 1 2 3 4 5 6 7 8 9 10; do
				left="$(ip netns pids "$ns" 2>/dev/null || true)"
				[ -z "$left" ] && break
				sleep 0.1
			done
			[ -n "$left" ] && kill -9 $left 2>/dev/null || true
		fi
		ip netns delete "$ns" 2>/dev/null || true
	done
	return 0
}

cmd_up() {
	local n="${1:-3}" i sw="$P-sw" m="$P-m" h s
	[[ "$n" =~ ^[1-9]$ ]] || die "N must be 1..9 (got '$n')"
	cmd_down

	# --- switch: two plain bridges, forwarding immediately, no netfilter.
	ip netns add "$sw"
	ip -n "$sw" link set lo up
	for br in br-sto br-mgmt; do
		ip -n "$sw" link add "$br" type bridge stp_state 0 forward_delay 0 \
			nf_call_iptables 0 nf_call_ip6tables 0 nf_call_arptables 0
		ip -n "$sw" link set "$br" up
	done
	nsh "$sw" "$(sc net.bridge.bridge-nf-call-iptables 0)$(sc net.bridge.bridge-nf-call-ip6tables 0)$(sc net.bridge.bridge-nf-call-arptables 0)"

	# --- master: management network only.
	ip netns add "$m"
	ip -n "$m" link set lo up
	ip -n "$sw" link add mgmt-m type veth peer name mgmt netns "$m"
	ip -n "$sw" link set mgmt-m master br-mgmt up
	ip -n "$m" addr add 10.20.0.100/24 dev mgmt
	ip -n "$m" link set mgmt up

	for i in $(seq 1 "$n"); do
		h="$P-h$i"; s="$P-s$i"
		ip netns add "$h"
		ip netns add "$s"

		# sysctls first, so "default" also covers the interfaces made below
		for ns in "$h" "$s"; do
			nsh "$ns" "$(sc net.ipv4.conf.all.rp_filter 0)$(sc net.ipv4.conf.default.rp_filter 0)$(sc net.ipv4.ping_group_range '0 2147483647')"
		done

		# private link (the host-local NFS vSwitch): same addresses on every host
		ip link add priv netns "$h" type veth peer name priv netns "$s"
		# storage and management: veth, switch side on the bridge
		for net in sto mgmt; do
			ip -n "$sw" link add "$net-h$i" type veth peer name "$net" netns "$h"
			ip -n "$sw" link add "$net-s$i" type veth peer name "$net" netns "$s"
			ip -n "$sw" link set "$net-h$i" master "br-$net" up
			ip -n "$sw" link set "$net-s$i" master "br-$net" up
		done

		ip -n "$h" addr add 192.168.33.1/24 dev priv
		ip -n "$s" addr add 192.168.33.2/24 dev priv
		ip -n "$h" addr add "10.10.0.$((10 + i))/24" dev sto
		ip -n "$s" addr add "10.10.0.$((20 + i))/24" dev sto
		ip -n "$h" addr add "10.20.0.$((10 + i))/24" dev mgmt
		ip -n "$s" addr add "10.20.0.$((20 + i))/24" dev mgmt

		# Host: never put 192.168.33.1 in an ARP request on the shared networks
		# (arp_announce=2) and never answer ARP there for it (arp_ignore=1).
		nsh "$h" "$(sc net.ipv4.conf.all.arp_announce 2)$(for d in priv sto mgmt; do sc "net.ipv4.conf.$d.rp_filter" 0; done)$(for d in sto mgmt; do sc "net.ipv4.conf.$d.arp_announce" 2; sc "net.ipv4.conf.$d.arp_ignore" 1; done)"
		# SCVM: accept 192.168.33.2 arriving on sto/mgmt (weak host model, rp_filter
		# off), but don't claim it in ARP on the shared networks: arp_ignore=1
		# (answer only for addresses on the receiving interface) and
		# arp_announce=2 (ARP requests sent while replying from 192.168.33.2 use
		# the interface's own address). priv keeps arp_ignore/arp_announce 0.
		nsh "$s" "$(for d in priv sto mgmt; do sc "net.ipv4.conf.$d.rp_filter" 0; done)$(for d in sto mgmt; do sc "net.ipv4.conf.$d.arp_ignore" 1; sc "net.ipv4.conf.$d.arp_announce" 2; done)$(sc net.ipv4.conf.priv.arp_ignore 0)"

		for ns in "$h" "$s"; do
			ip -n "$ns" link set lo up
			ip -n "$ns" link set priv up
			ip -n "$ns" link set sto up
			ip -n "$ns" link set mgmt up
		done
	done
	echo "$PROG: lab '$P' up with $n host(s)"
}

cmd_status() {
	local ns any=0
	for ns in $(lab_namespaces | sort -V); do
		any=1
		echo "== $ns"
		ip -n "$ns" -br addr show | sed 's/  */ /g; s/^/   /'
		ip -n "$ns" -4 route show | sed 's/^/   route: /'
	done
	[ "$any" -eq 1 ] || echo "no lab with prefix '$P'"
}

main() {
	local sub="${1:-}"
	[ $# -gt 0 ] && shift
	case "$sub" in
		up) preflight; cmd_up "$@" ;;
		down) preflight; cmd_down ;;
		status) preflight; cmd_status ;;
		*) echo "usage: $PROG up [N] | down | status   (prefix: NFSHA_LAB_PREFIX=$P)" >&2; exit 2 ;;
	esac
}

main "$@"
