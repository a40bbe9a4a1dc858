# Sourced by the scripts: makes .venv (Python 3.11+) with every package of the repository
# installed in editable mode. Set JOBQ_EXTRAS=dev for the test tools (the `dev` group of the
# root pyproject.toml).
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=$root/.venv
python=${PYTHON:-python3}
if [ ! -x "$venv/bin/python" ]; then
  "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || { echo "Python 3.11 or newer is needed (set PYTHON=...)" >&2; exit 1; }
  "$python" -m venv "$venv"
fi
# pip 25.1+ reads dependency groups (--group).
"$venv/bin/pip" install --quiet --disable-pip-version-check --upgrade 'pip>=25.1'
args=()
for package in clients/python server worker bench cli; do args+=(-e "$root/$package"); done
[[ ${JOBQ_EXTRAS:-} == dev ]] && args+=(--group "$root/pyproject.toml:dev")
"$venv/bin/pip" install --quiet --disable-pip-version-check "${args[@]}"
