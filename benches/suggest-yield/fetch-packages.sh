#!/usr/bin/env bash
# Fetch two real, pinned packages with passing test suites into benches/data/yield/
# (gitignored via /benches/data) for measuring the yield of `refactor-ai suggest`:
# how many proposed refactors of real duplicates survive the package's own tests.
#
#   benches/data/yield/cachetools-8.0.2   Python sdist (src/ layout + tests/), stdlib unittest only
#       test: cd DIR && PYTHONPATH=src python3 -m unittest          (476 tests, needs python >= 3.11)
#   benches/data/yield/semver-1.0.28      Rust crate as published, with its shipped Cargo.lock
#       test: cd DIR && cargo test --offline                         (no runtime deps; dev-dep criterion)
#
# Idempotent: a package is skipped when its directory and stamp file are present.
# FORCE=1 refetches. VERIFY=1 also runs both test suites in a scratch copy.
# Needs: python3 + pip, cargo (each talks only to its ordinary package registry).
#
# Environment:
#   PY_SPEC     pip requirement of the Python sdist   (default: cachetools==8.0.2)
#   CRATE       crate name                             (default: semver)
#   CRATE_VER   exact crate version                    (default: 1.0.28)
#   FORCE=1     refetch even if present
#   VERIFY=1    run the test suites afterwards (in a temporary copy, nothing is written here)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
data="$(cd "$here/.." && pwd)/data/yield"
mkdir -p "$data"

PY_SPEC="${PY_SPEC:-cachetools==8.0.2}"
CRATE="${CRATE:-semver}"
CRATE_VER="${CRATE_VER:-1.0.28}"
FORCE="${FORCE:-0}"
VERIFY="${VERIFY:-0}"
cargo_home="${CARGO_HOME:-$HOME/.cargo}"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/refactor-ai-yield.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

log() { printf '==> %s\n' "$*" >&2; }

# ------------------------------------------------------------------------ python
py_dest=""
fetch_python() {
    local name="${PY_SPEC%%==*}" ver="${PY_SPEC##*==}"
    py_dest="$data/$name-$ver"
    local stamp="$py_dest/.fetched"
    if [[ "$FORCE" != 1 && -f "$stamp" ]]; then
        log "$name: present at $py_dest, skipping"
        return
    fi
    log "$name: downloading sdist ($PY_SPEC)"
    python3 -m pip download --quiet --no-deps --no-binary :all: "$PY_SPEC" -d "$tmp/py-dl"
    local tarball top
    tarball=$(find "$tmp/py-dl" -maxdepth 1 -name '*.tar.gz' | head -n1)
    [[ -n "$tarball" ]] || { echo "$name: no sdist downloaded" >&2; exit 1; }
    mkdir -p "$tmp/py-src"
    tar --no-same-owner -xzf "$tarball" -C "$tmp/py-src"
    top=$(find "$tmp/py-src" -mindepth 1 -maxdepth 1 -type d | head -n1)
    [[ -d "$top/tests" ]] || { echo "$name: sdist $tarball ships no tests/" >&2; exit 1; }
    rm -rf "$py_dest"
    cp -a "$top" "$py_dest"
    basename "$tarball" > "$stamp"
}

# ------------------------------------------------------------------------ rust
rs_dest=""
fetch_crate() {
    rs_dest="$data/$CRATE-$CRATE_VER"
    local stamp="$rs_dest/.fetched"
    if [[ "$FORCE" != 1 && -f "$stamp" ]]; then
        log "$CRATE: present at $rs_dest, skipping"
        return
    fi
    log "$CRATE: fetching =$CRATE_VER via a throwaway cargo project"
    local proj="$tmp/crate-proj"
    mkdir -p "$proj/src"
    cat > "$proj/Cargo.toml" <<EOF
[package]
name = "refactor-ai-yield-fetch"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
$CRATE = "=$CRATE_VER"

[workspace]
EOF
    : > "$proj/src/lib.rs"
    (cd "$proj" && cargo fetch --quiet)
    local src
    src=$(find "$cargo_home"/registry/src -mindepth 2 -maxdepth 2 -type d -name "$CRATE-$CRATE_VER" 2>/dev/null | head -n1)
    rm -rf "$rs_dest"
    if [[ -n "$src" && -f "$src/Cargo.toml" ]]; then
        cp -a "$src" "$rs_dest"
    else # not unpacked (yet): the .crate file in the download cache is a .tar.gz
        local crate_file
        crate_file=$(find "$cargo_home"/registry/cache -name "$CRATE-$CRATE_VER.crate" | head -n1)
        [[ -n "$crate_file" ]] || { echo "$CRATE: $CRATE-$CRATE_VER not found under $cargo_home/registry" >&2; exit 1; }
        tar --no-same-owner -xzf "$crate_file" -C "$data"
    fi
    rm -f "$rs_dest/.cargo-ok" "$rs_dest/.cargo_vcs_info.json"
    # The crate's own (dev-)dependencies, as pinned by its shipped Cargo.lock, so that
    # `cargo test --offline` works from here on.
    (cd "$rs_dest" && cargo fetch --quiet)
    echo "$CRATE-$CRATE_VER.crate" > "$stamp"
}

# ------------------------------------------------------------------------ verify
timed() { # LABEL CMD... : run, print the wall time
    local label="$1" start end
    shift
    start=$(date +%s)
    "$@"
    end=$(date +%s)
    log "$label: passed in $((end - start))s"
}

verify() {
    log "verifying in $tmp/verify (scratch copies)"
    mkdir -p "$tmp/verify"
    cp -a "$py_dest" "$tmp/verify/py"
    cp -a "$rs_dest" "$tmp/verify/rs"
    timed "python tests" bash -c "cd '$tmp/verify/py' && PYTHONPATH=src python3 -B -m unittest 2>&1 | tail -n 3"
    timed "cargo test" bash -c "cd '$tmp/verify/rs' && CARGO_TARGET_DIR='$tmp/verify/target' cargo test --offline --quiet 2>&1 | grep -E '^test result' "
}

fetch_python
fetch_crate
[[ "$VERIFY" == 1 ]] && verify

echo
echo "python  $py_dest"
echo "        test: cd $py_dest && PYTHONPATH=src python3 -m unittest"
echo "rust    $rs_dest"
echo "        test: cd $rs_dest && cargo test --offline"
