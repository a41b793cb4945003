#!/usr/bin/env bash
# Fetch the benchmark corpora and the jscpd anchor into benches/data/ (gitignored).
#
#   benches/data/django   the `django/` package of the Django 5.1.x sdist (~155k lines of Python)
#   benches/data/tokio    the tokio 1.x crate as published (src/ + tests/, ~148k lines of Rust)
#   benches/data/node     jscpd 5 (native Rust binary shipped in an npm platform package)
#
# Idempotent: each piece is skipped when already present. FORCE=1 refetches everything.
# Needs: python3 + pip, cargo, npm (each talks only to its ordinary package registry).
#
# Environment:
#   DJANGO_SPEC     pip requirement for the Django sdist   (default: django==5.1.*)
#   TOKIO_REQ       cargo version requirement for tokio    (default: 1)
#   JSCPD_VERSION   npm version of jscpd                   (default: 5.3.3, see below)
#   FORCE=1         refetch even if present
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
data="$here/data"
mkdir -p "$data"

DJANGO_SPEC="${DJANGO_SPEC:-django==5.1.*}"
TOKIO_REQ="${TOKIO_REQ:-1}"
# jscpd 5.4.1 (the npm "latest" at the time of writing) was published without its
# platform packages (jscpd-linux-x64-gnu@5.4.1 etc. do not exist), so its wrapper
# dies with "Platform package ... not installed". 5.3.3 is the newest 5.x whose
# native binary package exists. Override with JSCPD_VERSION=... when that changes.
JSCPD_VERSION="${JSCPD_VERSION:-5.3.3}"
FORCE="${FORCE:-0}"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/refactor-ai-fetch.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

log() { printf '==> %s\n' "$*" >&2; }

count_lines() { # DIR EXT -> "<files> files, <lines> lines"
    local dir="$1" ext="$2" files lines
    files=$(find "$dir" -type f -name "*.$ext" | wc -l)
    lines=$(find "$dir" -type f -name "*.$ext" -print0 | xargs -0 cat | wc -l)
    echo "$files files, $lines lines"
}

# --------------------------------------------------------------------------- django
fetch_django() {
    local dest="$data/django" stamp="$data/.django.version"
    if [[ "$FORCE" != 1 && -f "$dest/__init__.py" && -f "$stamp" ]]; then
        log "django: present ($(cat "$stamp")), skipping"
        return
    fi
    log "django: downloading sdist ($DJANGO_SPEC)"
    python3 -m pip download --quiet --no-deps --no-binary :all: "$DJANGO_SPEC" -d "$tmp/dj-dl"
    local tarball
    tarball=$(ls "$tmp"/dj-dl/*.tar.gz | head -n1)
    mkdir -p "$tmp/dj-src"
    tar --no-same-owner -xzf "$tarball" -C "$tmp/dj-src"
    local top
    top=$(find "$tmp/dj-src" -mindepth 1 -maxdepth 1 -type d | head -n1)
    [[ -f "$top/django/__init__.py" ]] || { echo "django: unexpected sdist layout in $tarball" >&2; exit 1; }
    rm -rf "$dest"
    # Only the importable package (django/), not tests/ (~318k more lines) or docs/.
    cp -a "$top/django" "$dest"
    basename "$tarball" .tar.gz > "$stamp"
    log "django: installed $(cat "$stamp")"
}

# --------------------------------------------------------------------------- tokio
fetch_tokio() {
    local dest="$data/tokio" stamp="$data/.tokio.version"
    if [[ "$FORCE" != 1 && -f "$dest/Cargo.toml" && -f "$stamp" ]]; then
        log "tokio: present ($(cat "$stamp")), skipping"
        return
    fi
    log "tokio: vendoring tokio $TOKIO_REQ via a throwaway cargo project"
    local proj="$tmp/tokio-proj"
    mkdir -p "$proj/src"
    cat > "$proj/Cargo.toml" <<EOF
[package]
name = "refactor-ai-corpus-fetch"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
tokio = { version = "$TOKIO_REQ", features = ["full"] }

[workspace]
EOF
    echo 'fn main() {}' > "$proj/src/main.rs"
    (cd "$proj" && cargo vendor --quiet --versioned-dirs "$tmp/tokio-vendor" >/dev/null)
    local crate
    crate=$(find "$tmp/tokio-vendor" -mindepth 1 -maxdepth 1 -type d -name 'tokio-[0-9]*' | sort -V | tail -n1)
    [[ -n "$crate" && -f "$crate/Cargo.toml" ]] || { echo "tokio: crate not found in vendor dir" >&2; exit 1; }
    rm -rf "$dest"
    cp -a "$crate" "$dest"
    rm -f "$dest/.cargo-checksum.json"
    basename "$crate" > "$stamp"
    log "tokio: installed $(cat "$stamp")"
}

# --------------------------------------------------------------------------- jscpd
jscpd_bin() { # path of the native jscpd binary, if installed
    find "$data/node/node_modules" -maxdepth 3 -type f -path '*/jscpd-*/bin/jscpd' 2>/dev/null | head -n1
}

fetch_jscpd() {
    local bin
    bin=$(jscpd_bin || true)
    if [[ "$FORCE" != 1 && -n "$bin" && -x "$bin" ]] && "$bin" --version 2>/dev/null | grep -qx "jscpd $JSCPD_VERSION"; then
        log "jscpd: present ($("$bin" --version)), skipping"
        return
    fi
    command -v npm >/dev/null || { echo "jscpd: npm not found (apt-get install -y npm)" >&2; exit 1; }
    log "jscpd: npm install jscpd@$JSCPD_VERSION into $data/node"
    rm -rf "$data/node"
    mkdir -p "$data/node"
    npm install --prefix "$data/node" --no-audit --no-fund --no-save --loglevel=error "jscpd@$JSCPD_VERSION" >&2
    bin=$(jscpd_bin || true)
    if [[ -z "$bin" ]] || ! "$bin" --version >/dev/null 2>&1; then
        echo "jscpd: the platform package with the native binary did not install (see npm output above)" >&2
        exit 1
    fi
    log "jscpd: installed $("$bin" --version) at ${bin#"$here/"}"
}

fetch_django
fetch_tokio
fetch_jscpd

echo
echo "corpus  version               size"
printf 'django  %-20s  %s of Python\n' "$(cat "$data/.django.version")" "$(count_lines "$data/django" py)"
printf 'tokio   %-20s  %s of Rust\n' "$(cat "$data/.tokio.version")" "$(count_lines "$data/tokio" rs)"
printf 'jscpd   %-20s  %s\n' "$("$(jscpd_bin)" --version | awk '{print $2}')" "$(jscpd_bin)"
