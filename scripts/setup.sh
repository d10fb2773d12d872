#!/usr/bin/env bash
# One-time (and idempotent) set-up: a virtualenv in .venv with the project and
# its test tools. With --test it also installs the system programs the
# integration tests drive (Xvfb, xwd, ffprobe, oscsend/oscdump, jackd, PortAudio, Chromium) when it
# can (root + apt-get).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
want_test=0
[ "${1:-}" = "--test" ] && want_test=1

need_apt=()
if [ "$want_test" = 1 ]; then
  command -v Xvfb >/dev/null || need_apt+=(xvfb xauth)
  command -v xwd >/dev/null || need_apt+=(x11-apps)
  command -v xdotool >/dev/null || need_apt+=(xdotool)
  command -v ffprobe >/dev/null || need_apt+=(ffmpeg)
  command -v oscsend >/dev/null || need_apt+=(liblo-tools)
  command -v jackd >/dev/null || need_apt+=(jackd2)
  command -v chromium >/dev/null || need_apt+=(chromium)  # the control page's browser test
  ldconfig -p 2>/dev/null | grep -q "libportaudio.so.2" || need_apt+=(libportaudio2)  # sounddevice's C library
fi
if ! "$PY" -c "import venv, ensurepip" 2>/dev/null; then need_apt+=(python3-venv); fi
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing system packages: ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  else
    echo "setup: missing system packages (${need_apt[*]}); the tests that need them will be skipped"
  fi
fi

stamp=.venv/.installed
extras=""
[ "$want_test" = 1 ] && extras="[test]"
key="$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)$extras"
if [ -f "$stamp" ] && grep -qx -- "$key" "$stamp"; then exit 0; fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
echo "setup: installing Python packages into .venv (first run takes a few minutes)"
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
.venv/bin/python -m pip install -q -c constraints.txt -e ".$extras" 2> >(grep -v "is ignored: it is neither" >&2)
if [ "$want_test" = 1 ]; then
  # The optional Link extra, for the test that joins a real Link session. Apart, so that a
  # platform without an aalink wheel still gets every other test (that one is then skipped).
  .venv/bin/python -m pip install -q -c constraints.txt -e ".[test,link]" >/dev/null 2>&1 \
    || echo "setup: aalink (the link extra) did not install; the Ableton Link test will be skipped"
fi
echo "$key" > "$stamp"
