#!/usr/bin/env bash
# npm's prestart/pretest step: installs the Node dependencies when they are
# missing or older than package-lock.json, so `npm start` and `npm test`
# work on a fresh clone. Installs from the lock file only (npm ci).
set -euo pipefail
cd "$(dirname "$0")/.."
stamp=node_modules/.package-lock.json
if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ] \
  || ! node -e "require.resolve('typescript'); require.resolve('@grpc/proto-loader/build/bin/proto-loader-gen-types.js')" 2>/dev/null; then
  echo "scripts/node-deps.sh: installing Node dependencies (npm ci)"
  npm ci --no-audit --no-fund
fi
