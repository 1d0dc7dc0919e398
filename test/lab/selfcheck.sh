#!/usr/bin/env bash
# Self-check of the namespace lab: builds 3 hosts, checks plain reachability
# and the NFS reroute (host h2 reaches 192.168.33.2 on its own SCVM, then on
# SCVM s1 over storage, then over management, then back), tears down.
# Exits non-zero and names every failed check.
#
# Uses its own prefix (default "nfsha-chk") so it never tears down a lab you
# have up with the default prefix; override with NFSHA_LAB_PREFIX.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
export NFSHA_LAB_PREFIX="${NFSHA_LAB_PREFIX:-nfsha-chk}"
P="$NFSHA_LAB_PREFIX"
TOPO="$HERE/topology.sh"
PORT=2049

[ "$(id -u)" -eq 0 ] || { echo "selfcheck: must run as root" >&2; exit 1; }
command -v ip >/dev/null 2>&1 || { echo "selfcheck: the 'ip' command (iproute2) is missing" >&2; exit 1; }
command -v python3 >/dev/null 2>&1 || { echo "selfcheck: python3 is missing" >&2; exit 1; }

SERVER_PIDS=()
cleanup() {
	local pid
	for pid in "${SERVER_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
	for pid in "${SERVER_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
	"$TOPO" down || true
}
trap cleanup EXIT

PASS=0
FAIL=0
FAILED=()
ok() { PASS=$((PASS + 1)); echo "ok   - $1"; }
bad() { FAIL=$((FAIL + 1)); FAILED+=("$1"); echo "FAIL - $1${2:+: $2}"; }

# ICMP echo, one packet, 1 s: ping when installed, else a raw socket in python.
PY_PING='
import os, socket, struct, sys, time
dst = sys.argv[1]
def csum(b):
    if len(b) % 2: b += b"\0"
    t = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    t = (t >> 16) + (t & 0xffff); t += t >> 16
    return ~t & 0xffff
ident, data = os.getpid() & 0xffff, b"nfsha-lab"
pkt = struct.pack("!BBHHH", 8, 0, csum(struct.pack("!BBHHH", 8, 0, 0, ident, 1) + data), ident, 1) + data
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
s.sendto(pkt, (dst, 0))
end = time.time() + 1
while True:
    left = end - time.time()
    if left <= 0: sys.exit(1)
    s.settimeout(left)
    try: buf, addr = s.recvfrom(2048)
    except socket.timeout: sys.exit(1)
    ihl = (buf[0] & 15) * 4
    typ, _, _, i, _ = struct.unpack("!BBHHH", buf[ihl:ihl + 8])
    if typ == 0 and i == ident and addr[0] == dst: sys.exit(0)
'
ping1() { # ns addr
	if command -v ping >/dev/null 2>&1; then
		ip netns exec "$1" ping -c1 -W1 -q "$2" >/dev/null 2>&1
	else
		ip netns exec "$1" python3 -c "$PY_PING" "$2" >/dev/null 2>&1
	fi
}

# One-shot TCP server: answers every connection with its name, then closes.
PY_SERVER='
import socket, sys
name = (sys.argv[1] + "\n").encode()
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[2]))); s.listen(16)
while True:
    c, _ = s.accept()
    try: c.sendall(name)
    finally: c.close()
'
# Client: prints "<reply> <local address>" (or "ERR <reason>").
PY_CLIENT='
import socket, sys
try:
    c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)
    local = c.getsockname()[0]
    data = b""
    while True:
        d = c.recv(100)
        if not d: break
        data += d
    print(data.decode().strip(), local)
except Exception as e:
    print("ERR", type(e).__name__)
'
tcp_get() { ip netns exec "$1" python3 -c "$PY_CLIENT" "$2" "$PORT"; }

# check_tcp NAME NS ADDR WANT_REPLY WANT_SRC
check_tcp() {
	local got; got="$(tcp_get "$2" "$3")"
	if [ "$got" = "$4 $5" ]; then ok "$1 (got '$4' from $3, source $5)"
	else bad "$1" "want '$4 $5', got '$got'"; fi
}
# check_route NAME NS ADDR PATTERN
check_route() {
	local r; r="$(ip -n "$2" -4 route get "$3" 2>&1 | head -1)"
	if [[ "$r" =~ $4 ]]; then ok "$1 ($r)"; else bad "$1" "route get $3: '$r' does not match /$4/"; fi
}
check_ping() { if ping1 "$2" "$3"; then ok "$1"; else bad "$1" "no echo reply from $3 in $2"; fi; }

t0=$(date +%s.%N)
"$TOPO" up 3
t1=$(date +%s.%N)
echo "# up 3 took $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}') s"

H2="$P-h2"

# --- 1. plain reachability from h2
check_route "h2 reaches 192.168.33.2 on priv" "$H2" 192.168.33.2 "dev priv src 192\.168\.33\.1"
check_ping "h2 ping 192.168.33.2 (own SCVM s2)" "$H2" 192.168.33.2
check_ping "h2 ping 10.10.0.21 (s1 storage)" "$H2" 10.10.0.21
check_ping "h2 ping 10.20.0.21 (s1 mgmt)" "$H2" 10.20.0.21
check_ping "h2 ping 10.20.0.100 (master)" "$H2" 10.20.0.100
check_ping "master ping 10.20.0.13 (h3 mgmt)" "$P-m" 10.20.0.13
check_ping "s3 ping 10.10.0.11 (h1 storage)" "$P-s3" 10.10.0.11

# --- 2. a name server on :2049 in every SCVM
for i in 1 2 3; do
	ip netns exec "$P-s$i" python3 -c "$PY_SERVER" "s$i" "$PORT" &
	SERVER_PIDS+=("$!")
done
for _ in $(seq 1 50); do # wait until all three listen
	n=0
	for i in 1 2 3; do
		ip netns exec "$P-s$i" ss -Hltn "sport = :$PORT" 2>/dev/null | grep -q . && n=$((n + 1))
	done
	[ "$n" -eq 3 ] && break
	sleep 0.1
done
check_tcp "2. h2 -> 192.168.33.2:$PORT is its own SCVM" "$H2" 192.168.33.2 s2 192.168.33.1

# --- 3. s2's private link down, host route via s1's storage address
ip -n "$P-s2" link set priv down
ip -n "$H2" route replace 192.168.33.2/32 via 10.10.0.21
check_route "3. route to 192.168.33.2 goes via s1 on storage" "$H2" 192.168.33.2 "via 10\.10\.0\.21 dev sto src 10\.10\.0\.12"
check_route "3. s1 replies to h2 over storage" "$P-s1" 10.10.0.12 "dev sto src 10\.10\.0\.21"
check_tcp "3. rerouted over storage, s1 answers" "$H2" 192.168.33.2 s1 10.10.0.12

# --- 4. s1's storage bridge port down, route via s1's management address
ip -n "$P-sw" link set sto-s1 down
ip -n "$H2" route replace 192.168.33.2/32 via 10.20.0.21
check_route "4. route to 192.168.33.2 goes via s1 on mgmt" "$H2" 192.168.33.2 "via 10\.20\.0\.21 dev mgmt src 10\.20\.0\.12"
check_tcp "4. rerouted over mgmt, s1 answers" "$H2" 192.168.33.2 s1 10.20.0.12

# --- 5. back home
ip -n "$H2" route del 192.168.33.2/32
ip -n "$P-s2" link set priv up
check_route "5. route back on priv" "$H2" 192.168.33.2 "dev priv src 192\.168\.33\.1"
got=""
for _ in $(seq 1 20); do # the veth needs a moment to regain carrier
	got="$(tcp_get "$H2" 192.168.33.2)"
	[ "$got" = "s2 192.168.33.1" ] && break
	sleep 0.1
done
if [ "$got" = "s2 192.168.33.1" ]; then ok "5. back on the private link, s2 answers"
else bad "5. back on the private link, s2 answers" "want 's2 192.168.33.1', got '$got'"; fi

# --- no leak: the other hosts still reach their own SCVM on priv
check_tcp "h1 -> 192.168.33.2 still its own SCVM" "$P-h1" 192.168.33.2 s1 192.168.33.1
check_tcp "h3 -> 192.168.33.2 still its own SCVM" "$P-h3" 192.168.33.2 s3 192.168.33.1

t2=$(date +%s.%N)
cleanup
trap - EXIT
t3=$(date +%s.%N)
echo "# down took $(awk -v a="$t2" -v b="$t3" 'BEGIN{printf "%.2f", b-a}') s"
if [ -n "$(ip netns list | awk '{print $1}' | grep -E "^${P//./\\.}-(sw|m|h[1-9]|s[1-9])\$" || true)" ]; then
	bad "down removed every namespace" "left: $(ip netns list | grep "^$P-" | tr '\n' ' ')"
else
	ok "down removed every namespace"
fi

echo "selfcheck: $PASS passed, $FAIL failed"
if [ "$FAIL" -ne 0 ]; then
	printf 'selfcheck failed: %s\n' "${FAILED[@]}" >&2
	exit 1
fi
