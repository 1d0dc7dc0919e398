#!/usr/bin/env bash
# Installs the system packages the tests and the lab need, where missing:
# etcd (leader election tests), iproute2 (lab), NFS-Ganesha, rpcbind, libnfs
# (real NFS end to end), a gRPC client that is not Node (python3-grpcio with
# stubs from grpc-proto, standing in for grpcurl) and curl + jq (the README's
# HTTP lines), systemd-analyze and promtool (the shipped units and alert
# rules are checked). Idempotent;
# needs root for apt.
set -euo pipefail
need=()
command -v etcd >/dev/null 2>&1 || need+=(etcd-server)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v ss >/dev/null 2>&1 || need+=(iproute2)
command -v ganesha.nfsd >/dev/null 2>&1 || need+=(nfs-ganesha nfs-ganesha-vfs)
command -v rpcbind >/dev/null 2>&1 || need+=(rpcbind)
command -v nft >/dev/null 2>&1 || need+=(nftables)
command -v busybox >/dev/null 2>&1 || need+=(busybox)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v strip >/dev/null 2>&1 || need+=(binutils)
command -v nfs-cp >/dev/null 2>&1 || need+=(libnfs-utils)
[ -f /usr/include/nfsc/libnfs.h ] || need+=(libnfs-dev)
command -v gcc >/dev/null 2>&1 || need+=(gcc libc6-dev)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v jq >/dev/null 2>&1 || need+=(jq)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
[ -f /usr/share/grpc-proto/grpc/health/v1/health.proto ] || need+=(grpc-proto)
/usr/bin/python3 -c 'import grpc' 2>/dev/null || need+=(python3-grpcio)
/usr/bin/python3 -c 'import grpc_tools.protoc' 2>/dev/null || need+=(python3-grpc-tools)
/usr/bin/python3 -c 'import google.protobuf.json_format' 2>/dev/null || need+=(python3-protobuf)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "test/setup.sh: missing ${need[*]}; run as root (apt-get install -y ${need[*]})" >&2
    exit 1
  fi
  echo "test/setup.sh: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# Debian's package may start an etcd of its own on the default ports; the tests
# start their own clusters on free ports and do not need it.
exit 0
