#!/usr/bin/env bash
# Builds the libnfs writer used by the NFS end-to-end tests (needs gcc and libnfs-dev).
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -f /usr/include/nfsc/libnfs.h ]; then
  echo "test/nfs-writer/build.sh: libnfs-dev is missing (test/setup.sh installs it); the NFS e2e tests will say so" >&2
  exit 0
fi
[ nfs-writer -nt nfs-writer.c ] || gcc -O2 -Wall -Wextra -o nfs-writer nfs-writer.c -lnfs
