#!/usr/bin/env bash
# Every test of vypusk, on a fresh machine: installs and starts what the tests need
# (PostgreSQL, Chromium + chromedriver, nginx, s3s-fs), then runs the workspace tests (the S3
# ones included, none skipped), the fuzz targets for 30 s each on their corpora, and a short
# crash loop. This is the README's test command; .ci/run calls exactly it.
#
# Installing needs root (apt-get); on a machine where everything is present it installs
# nothing. Services it starts itself (s3s-fs) are stopped when it exits.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
export PATH="$HOME/.cargo/bin:$PATH"

S3S_FS_VERSION=0.14.1
stages_passed=0

say() { printf '\n== %s\n' "$*"; }

apt_install() {
    if [ "$(id -u)" != 0 ]; then
        echo "missing: $* — install them (Debian: apt-get install $*) or run this script as root" >&2
        exit 1
    fi
    if [ -z "${APT_UPDATED:-}" ]; then
        apt-get update -qq
        APT_UPDATED=1
    fi
    # Packages install their files only: no service starts (nginx would take port 80).
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
    rm -f /usr/sbin/policy-rc.d
}

say "PostgreSQL at 127.0.0.1:5432 (the PostgreSQL tests and the multi-instance test)"
if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    apt_install postgresql
fi
if ! pg_isready -h 127.0.0.1 -p 5432 -q; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
fi
for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
pg_isready -h 127.0.0.1 -p 5432

say "Chromium + chromedriver (browser tests), nginx (reverse-proxy tests)"
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing+=(fonts-dejavu-core)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
if [ "${#missing[@]}" -gt 0 ]; then
    apt_install "${missing[@]}"
fi

say "s3s-fs $S3S_FS_VERSION (S3-compatible server for the S3 tests)"
if ! s3s-fs --version 2>/dev/null | grep -q "$S3S_FS_VERSION"; then
    cargo install s3s-fs --version "$S3S_FS_VERSION" --features binary --locked --quiet
fi
S3_ROOT="$(mktemp -d)"
S3_PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
mkdir -p "$S3_ROOT/vypusk"
s3s-fs --host 127.0.0.1 --port "$S3_PORT" --access-key test --secret-key test-secret "$S3_ROOT" >/dev/null 2>&1 &
S3_PID=$!
trap 'kill $S3_PID 2>/dev/null || true; rm -rf "$S3_ROOT"' EXIT
for _ in $(seq 1 50); do (echo > "/dev/tcp/127.0.0.1/$S3_PORT") 2>/dev/null && break; sleep 0.2; done
# The storage crate's round trip gets the bucket `vypusk`; end-to-end tests make a bucket of
# their own under VYPUSK_TEST_S3_ROOT (s3s-fs keeps a bucket as a directory).
export VYPUSK_TEST_S3="s3://vypusk?endpoint=http://127.0.0.1:$S3_PORT&access_key_id=test&secret_access_key=test-secret"
export VYPUSK_TEST_S3_ENDPOINT="http://127.0.0.1:$S3_PORT"
export VYPUSK_TEST_S3_ROOT="$S3_ROOT"

say "schemathesis (schema-driven tests of the API against its OpenAPI document)"
SCHEMATHESIS_VERSION=4.32.5
if ! target/schemathesis/bin/schemathesis --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
    if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then
        apt_install python3-venv
    fi
    rm -rf target/schemathesis
    python3 -m venv target/schemathesis
    target/schemathesis/bin/pip install --quiet "schemathesis==$SCHEMATHESIS_VERSION"
fi
target/schemathesis/bin/schemathesis --version

say "workspace tests (the S3 tests included)"
cargo build --workspace --all-targets
cargo test --workspace
stages_passed=$((stages_passed + 1))

say "fuzz targets, 30 s each on the committed corpora, two at a time"
FUZZ_JOBS="${FUZZ_JOBS:-2}" bash fuzz/ci.sh
stages_passed=$((stages_passed + 1))

# The short crash loop (the 100-kill run is in bench/RESULTS.md): SIGKILL 10 times under
# concurrent uploads, publishes, deletes and CSV imports, checks after each restart. It prints
# its seed; repeat a failing run with `--seed`.
say "crash loop, 10 kills"
target/debug/crashloop --kills 10
stages_passed=$((stages_passed + 1))

echo
echo "stages: $stages_passed passed, 0 failed"
