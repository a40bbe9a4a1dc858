#!/usr/bin/env bash
# CI for the TypeScript client: install what package-lock.json pins, check that src/gen
# matches the protos, type-check (library, tests and examples), build, and run the tests.
# The integration tests start the real server from ../../.venv/bin/jobq (made by
# scripts/venv.sh) or $JOBQ_SERVE_BIN; outside CI they are skipped when it is missing.
set -euo pipefail
cd "$(dirname "$0")"

server=${JOBQ_SERVE_BIN:-../../.venv/bin/jobq}
if [[ -n ${CI:-} && ! -x $server ]]; then
  echo "clients/node/test.sh: no jobq server at $server (run scripts/venv.sh first)" >&2
  exit 1
fi

npm ci --no-audit --no-fund
npm run gen:check
npm run typecheck
npm test
