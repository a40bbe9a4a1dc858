# Sourced by the scripts: makes .venv (Python 3.11+) with the project installed.
# Set JOBQ_EXTRAS=dev for the test tools.
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=$root/.venv
python=${PYTHON:-python3}
if [ ! -x "$venv/bin/python" ]; then
  "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || { echo "Python 3.11 or newer is needed (set PYTHON=...)" >&2; exit 1; }
  "$python" -m venv "$venv"
  "$venv/bin/pip" install --quiet --upgrade pip
fi
extras=${JOBQ_EXTRAS:+[$JOBQ_EXTRAS]}
"$venv/bin/pip" install --quiet --disable-pip-version-check -e "$root/clients/python" -e "$root$extras"
