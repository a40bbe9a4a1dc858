#!/usr/bin/env bash
# Installs the peers' runtimes (idempotent, quiet): one venv per Python peer (their redis-py pins
# conflict: arq needs redis<6) and bullmq's node_modules from the committed package-lock.json.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
py="${PYTHON:-python3}"

for peer in rq arq celery redis_lists; do
  venv="$here/.venv-$peer"
  req="$here/$peer/requirements.txt"
  stamp="$venv/.requirements.txt"
  if [[ -x "$venv/bin/python" ]] && cmp -s "$req" "$stamp"; then
    continue # already installed from this exact requirements file
  fi
  [[ -x "$venv/bin/python" ]] || "$py" -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$req"
  cp "$req" "$stamp"
done

lock="$here/bullmq/package-lock.json"
stamp="$here/bullmq/node_modules/.setup-lock.json"
if ! cmp -s "$lock" "$stamp"; then
  (cd "$here/bullmq" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  cp "$lock" "$stamp"
fi
