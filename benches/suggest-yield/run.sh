#!/usr/bin/env bash
# The yield of `refactor-ai suggest`: how many attempted duplicate findings end in a
# proven refactor, per model and edit format, over the two fixture projects and two real
# packages (fetched by fetch-packages.sh). Then every proven proposal is applied to a
# fresh copy and the project's full test suite is run again: a proven proposal that fails
# it would be a behaviour change we accepted.
#
#   benches/suggest-yield/run.sh [--models "ID ..."] [--formats "F ..."] [--repos "R ..."]
#                                [--max N] [--out DIR]
#
# Defaults: models "qwen2.5-coder-0.5b qwen2.5-coder-1.5b", formats "functions",
# repos "fixture-python fixture-rust cachetools semver", --max 10. Models come from the
# model cache (`refactor-ai models pull ID` first; REFACTOR_AI_CACHE_DIR is honoured).
# Results: DIR/<model>.<format>.<repo>.json (the session) and DIR/summary.tsv
# (default DIR: benches/data/yield/results). Run it on a quiet machine: generation speed
# is part of what it reports.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
models="qwen2.5-coder-0.5b qwen2.5-coder-1.5b"
formats="functions"
repos="fixture-python fixture-rust cachetools semver"
max=10
out="$root/benches/data/yield/results"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --models) models="$2"; shift 2 ;;
        --formats) formats="$2"; shift 2 ;;
        --repos) repos="$2"; shift 2 ;;
        --max) max="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done

bin="$root/target/release/refactor-ai"
if [[ ! -x "$bin" || -n "${REBUILD:-}" ]]; then
    (cd "$root" && cargo build --release --quiet)
fi
mkdir -p "$out"
scratch="$(mktemp -d "${TMPDIR:-/tmp}/refactor-ai-yield.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT

source_of() {
    case "$1" in
        fixture-python) echo "$root/tests/fixtures/repos/suggest/python" ;;
        fixture-rust) echo "$root/tests/fixtures/repos/suggest/rust" ;;
        cachetools) echo "$root/benches/data/yield/cachetools-8.0.2" ;;
        semver) echo "$root/benches/data/yield/semver-1.0.28" ;;
        *) echo "unknown repo $1" >&2; exit 2 ;;
    esac
}

# A fresh copy of a project as a git repository (the session lives in it).
fresh_copy() {
    local from="$1" to="$2"
    rm -rf "$to"
    mkdir -p "$to"
    cp -a "$from/." "$to/"
    rm -rf "$to/.refactor-ai" "$to/target" "$to/.fetched"
    git -C "$to" init -q
    git -C "$to" add -A
    git -C "$to" -c user.name=bench -c user.email=bench@localhost commit -qm base
}

# The project's test command, as the session recorded it, run in DIR.
run_tests() {
    local dir="$1" command="$2"
    (cd "$dir" && PYTHONPATH="$dir/src:$dir" PYTHONDONTWRITEBYTECODE=1 \
        CARGO_TARGET_DIR="$scratch/target-recheck" timeout 900 sh -c "$command" \
        >"$dir/.recheck.log" 2>&1)
}

printf 'model\tformat\trepo\tattempted\tparsed\tapplied\tparses\timproved\tproven\tproven_dup/attempted_dup\ts_per_finding\ttok_per_s\trecheck_pass/proven\n' \
    >"$out/summary.tsv"
for model in $models; do
    for format in $formats; do
        for repo in $repos; do
            src="$(source_of "$repo")"
            if [[ ! -d "$src" ]]; then
                echo "skipping $repo: $src is missing (run benches/suggest-yield/fetch-packages.sh)" >&2
                continue
            fi
            work="$scratch/$repo"
            fresh_copy "$src" "$work"
            result="$out/$model.$format.$repo.json"
            echo "==> $model / $format / $repo" >&2
            "$bin" suggest "$work" --no-cache --rule duplicate-code --max "$max" \
                --model "$model" --edit-format "$format" --format json >"$result"
            # Re-run the full suite on a fresh copy with each proven proposal applied.
            recheck_pass=0
            for id in $(python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(" ".join(p["id"] for p in s["proposals"] if p["verdict"]=="proven"))' "$result"); do
                check="$scratch/recheck"
                fresh_copy "$src" "$check"
                mkdir -p "$check/.refactor-ai"
                cp "$work/.refactor-ai/session.json" "$check/.refactor-ai/"
                "$bin" apply "$check" --id "$id" >/dev/null
                command=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["test_command"])' "$result")
                if run_tests "$check" "$command"; then
                    recheck_pass=$((recheck_pass + 1))
                else
                    echo "RECHECK FAILED: $model $format $repo $id (log kept in $out/recheck-$id.log)" >&2
                    cp "$check/.recheck.log" "$out/recheck-$id.log"
                fi
            done
            python3 - "$result" "$model" "$format" "$repo" "$recheck_pass" >>"$out/summary.tsv" <<'EOF'
import json, sys
path, model, fmt, repo, recheck = sys.argv[1:]
s = json.load(open(path))
m = s["summary"]
tps = m["generated_tokens"] / m["generation_seconds"] if m["generation_seconds"] else 0
print("\t".join(str(x) for x in [
    model, fmt, repo, m["attempted"], m["parsed"], m["applied"], m["parses"], m["improved"],
    m["proven"], f'{m["proven_duplicates"]}/{m["attempted_duplicates"]}',
    f'{m["seconds_per_finding"]:.1f}', f"{tps:.1f}", f'{recheck}/{m["proven"]}',
]))
EOF
            tail -n 1 "$out/summary.tsv" >&2
        done
    done
done
column -t -s $'\t' "$out/summary.tsv"
