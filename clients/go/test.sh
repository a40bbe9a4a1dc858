#!/usr/bin/env bash
# CI for the Go client: gofmt, go vet, go test (with the race detector when cgo works).
# The integration tests start `jobq serve` from the project's venv (JOBQ_SERVE_BIN
# overrides the path). Here a missing server fails the run; plain `go test` skips them.
set -euo pipefail
cd "$(dirname "$0")"
command -v go >/dev/null || export PATH=$PATH:/usr/local/go/bin

unformatted=$(gofmt -l .)
if [[ -n $unformatted ]]; then
  echo "gofmt: these files need formatting (run gofmt -w):" >&2
  echo "$unformatted" >&2
  exit 1
fi
echo "gofmt: ok"
go vet ./...
echo "go vet: ok"

race=()
if [[ $(go env CGO_ENABLED) == 1 ]] && command -v "$(go env CC)" >/dev/null; then
  race=(-race)
fi
JOBQ_REQUIRE_SERVER=${JOBQ_REQUIRE_SERVER:-1} go test "${race[@]}" -count=1 ./...
