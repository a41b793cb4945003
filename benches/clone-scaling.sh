#!/usr/bin/env bash
# How `scan` (duplicate detection included) grows with the size of the tree: builds trees
# of about 10k, 30k, 100k, 300k and 1M lines from a real corpus (whole files, copied again
# under copyN/ once the corpus runs out, so the largest trees are full of Type-1 clones: a
# worst case for clone detection) and times a cold scan of each.
#
# With jscpd installed by benches/fetch-corpora.sh, it is timed on the same trees (the same
# files: --format python or rust) and the last column is our time over its.
#
# usage: benches/clone-scaling.sh [CORPUS] [EXT]   (default: benches/data/django py)
# Needs target/release/refactor-ai (cargo build --release) and hyperfine.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
corpus="${1:-$here/data/django}"
ext="${2:-py}"
bin="${REFACTOR_AI:-$root/target/release/refactor-ai}"
[[ -x "$bin" ]] || { echo "no binary at $bin: cargo build --release" >&2; exit 1; }
command -v hyperfine >/dev/null || { echo "hyperfine is missing: apt-get install -y hyperfine" >&2; exit 1; }
tmp="$(mktemp -d "${TMPDIR:-/tmp}/refactor-ai-scaling.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
mapfile -t files < <(cd "$corpus" && find . -name "*.$ext" -type f | sort)
jscpd="${JSCPD:-$(find "$here/data/node/node_modules" -maxdepth 3 -type f -path '*/jscpd-*/bin/jscpd' 2>/dev/null | head -n1)}"
format=$([[ $ext == rs ]] && echo rust || echo python)
echo "| lines | files | mean wall s | µs per line | peak RSS MiB | duplicate findings | jscpd s | ratio |"
echo "|---|---|---|---|---|---|---|---|"
for target in 10000 30000 100000 300000 1000000; do
    dir="$tmp/$target"
    mkdir -p "$dir"
    lines=0 count=0 copy=0
    while (( lines < target )); do
        for file in "${files[@]}"; do
            (( lines >= target )) && break
            mkdir -p "$dir/copy$copy/$(dirname "$file")"
            cp "$corpus/$file" "$dir/copy$copy/$file"
            lines=$(( lines + $(wc -l < "$corpus/$file") ))
            count=$(( count + 1 ))
        done
        copy=$(( copy + 1 ))
    done
    hyperfine -N -i --style none --warmup 1 --runs 3 --export-json "$tmp/h.json" \
        "$bin scan $dir --format json --no-cache" >/dev/null 2>&1
    mean=$(python3 -c "import json; print(json.load(open('$tmp/h.json'))['results'][0]['mean'])")
    rss=$( { /usr/bin/time -f %M "$bin" scan "$dir" --format json --no-cache > "$tmp/out.json"; } 2>&1 | tail -n1)
    found=$(python3 -c "import json; print(sum(1 for f in json.load(open('$tmp/out.json'))['findings'] if f['kind'] == 'duplicate'))")
    anchor=0
    if [[ -n "$jscpd" && -x "$jscpd" ]]; then
        hyperfine -N -i --style none --warmup 1 --runs 3 --export-json "$tmp/j.json" \
            "$jscpd --format $format --reporters json --silent --no-gitignore -o $tmp/jscpd-out $dir" >/dev/null 2>&1
        anchor=$(python3 -c "import json; print(json.load(open('$tmp/j.json'))['results'][0]['mean'])")
    fi
    jtime=- ratio=-
    if [[ $anchor != 0 ]]; then
        jtime=$(awk -v j="$anchor" 'BEGIN { printf "%.3f", j }')
        ratio=$(awk -v m="$mean" -v j="$anchor" 'BEGIN { printf "%.2f", m / j }')
    fi
    awk -v l="$lines" -v c="$count" -v m="$mean" -v r="$rss" -v f="$found" -v j="$jtime" -v q="$ratio" \
        'BEGIN { printf "| %d | %d | %.3f | %.2f | %.1f | %d | %s | %s |\n", l, c, m, m * 1e6 / l, r / 1024, f, j, q }'
    rm -rf "$dir"
done
