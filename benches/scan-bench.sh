#!/usr/bin/env bash
# Wall time and peak RSS of `refactor-ai scan` / `refactor-ai metrics` on the
# benchmark corpora, side by side with the jscpd anchor on the same trees.
#
# Builds nothing. Expects:
#   - the binary at target/release/refactor-ai (or $REFACTOR_AI)
#   - corpora and jscpd from benches/fetch-corpora.sh under benches/data/
#   - hyperfine (optional; apt-get install -y hyperfine), else a plain shell loop
#   - GNU time at /usr/bin/time (apt-get install -y time) for peak RSS
#
# Environment:
#   REFACTOR_AI   binary to measure            (default: <repo>/target/release/refactor-ai)
#   CORPORA       space-separated subset       (default: "django tokio")
#   RUNS          timed runs per command       (default: 5)
#   WARMUP        untimed warm-up runs         (default: 1)
#   JSCPD         jscpd binary                 (default: the native binary under benches/data/node)
#   SKIP_JSCPD=1  do not time the anchor
#   BENCH_JSON    also write the raw numbers as JSON to this file
#   NO_HYPERFINE=1  use the /usr/bin/time loop even if hyperfine is installed
#
# Exit status: 0 when every command ran fine; 1 when any command failed
# (scan: exit code other than 0/1; metrics/jscpd: non-zero) or a prerequisite is missing.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
data="$here/data"

BIN="${REFACTOR_AI:-$root/target/release/refactor-ai}"
CORPORA="${CORPORA:-django tokio}"
RUNS="${RUNS:-5}"
WARMUP="${WARMUP:-1}"
SKIP_JSCPD="${SKIP_JSCPD:-0}"
BENCH_JSON="${BENCH_JSON:-}"

die() { echo "scan-bench: $*" >&2; exit 1; }

# ---------------------------------------------------------------- prerequisites
[[ -x "$BIN" ]] || die "no binary at $BIN (build it with: cargo build --release, or set REFACTOR_AI=/path/to/refactor-ai)"
[[ -x /usr/bin/time ]] || die "/usr/bin/time (GNU time) is missing: apt-get install -y time"
/usr/bin/time -f %M true >/dev/null 2>&1 || die "/usr/bin/time is not GNU time (needs -f %M): apt-get install -y time"

if [[ "$SKIP_JSCPD" != 1 ]]; then
    if [[ -z "${JSCPD:-}" ]]; then
        JSCPD=$(find "$data/node/node_modules" -maxdepth 3 -type f -path '*/jscpd-*/bin/jscpd' 2>/dev/null | head -n1)
    fi
    [[ -n "${JSCPD:-}" && -x "$JSCPD" ]] || die "jscpd not installed: run benches/fetch-corpora.sh (or SKIP_JSCPD=1)"
fi

have_hyperfine=0
if [[ "${NO_HYPERFINE:-0}" != 1 ]] && command -v hyperfine >/dev/null 2>&1 && hyperfine --help 2>/dev/null | grep -q -- '--shell=none'; then
    have_hyperfine=1
else
    echo "scan-bench: hyperfine not used (install: apt-get install -y hyperfine); falling back to a loop of $RUNS timed runs" >&2
fi

tmp="$(mktemp -d "${TMPDIR:-/tmp}/refactor-ai-bench.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

lang_of() { case "$1" in django) echo "python py";; tokio) echo "rust rs";; *) echo "";; esac; }

# ---------------------------------------------------------------- header
echo "# refactor-ai benchmark"
echo
echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "- host: $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "- binary: $BIN ($("$BIN" --version 2>/dev/null | head -n1 || true))"
[[ "$SKIP_JSCPD" != 1 ]] && echo "- anchor: $("$JSCPD" --version 2>/dev/null | head -n1) ($JSCPD)"
echo "- timing: $([[ $have_hyperfine == 1 ]] && echo "hyperfine $(hyperfine --version | awk '{print $2}')" || echo "shell loop timed with date +%s%N"), $WARMUP warm-up + $RUNS runs; peak RSS from the check run under /usr/bin/time -f %M"
# How busy is the machine right now? CPU idle share over 2 s from /proc/stat
# (the load average lags by a minute and counts this script's own earlier runs).
cpu_idle_pct() {
    local a b
    read -r -a a < /proc/stat; sleep 2; read -r -a b < /proc/stat
    local idle=$(( (b[4] + b[5]) - (a[4] + a[5]) )) total=0 i
    for i in 1 2 3 4 5 6 7 8; do total=$(( total + b[i] - a[i] )); done
    echo $(( total > 0 ? 100 * idle / total : 100 ))
}
idle_pct=$(cpu_idle_pct)
echo "- CPU idle before measuring: ${idle_pct}% (2 s sample)"
if (( idle_pct < 80 )); then
    echo "- WARNING: only ${idle_pct}% of the CPUs were idle before the run: other work is running, timings will be noisy"
fi
for c in $CORPORA; do
    read -r _lang ext <<<"$(lang_of "$c")"
    [[ -n "$ext" ]] || die "unknown corpus '$c' (known: django tokio)"
    dir="$data/$c"
    [[ -d "$dir" ]] || die "corpus $dir missing: run benches/fetch-corpora.sh"
    ver=$(cat "$data/.$c.version" 2>/dev/null || echo "?")
    nfiles=$(find "$dir" -type f -name "*.$ext" | wc -l)
    nlines=$(find "$dir" -type f -name "*.$ext" -print0 | xargs -0 cat | wc -l)
    echo "- corpus $c: $ver, $nfiles .$ext files, $nlines lines"
done
echo

# ---------------------------------------------------------------- measuring
# check_run NAME OKCODES CMD...: one run under GNU time; records exit code + peak RSS.
# Prints stderr and returns 1 if the exit code is not in OKCODES (space separated).
check_run() {
    local name="$1" okcodes="$2"; shift 2
    local tf="$tmp/$name.time" ef="$tmp/$name.stderr" rc rss
    /usr/bin/time -f '%M %e %x' -o "$tf" "$@" >/dev/null 2>"$ef"
    rc=$(tail -n1 "$tf" | awk '{print $3}')
    rss=$(tail -n1 "$tf" | awk '{print $1}')
    echo "$rss" > "$tmp/$name.rss"
    if [[ " $okcodes " != *" $rc "* ]]; then
        echo "FAILED: $name exited with status $rc: $*" >&2
        echo "----- stderr of $name -----" >&2
        tail -n 50 "$ef" >&2
        echo "---------------------------" >&2
        return 1
    fi
    return 0
}

# time_cmd NAME CMD...: writes "mean sd min" (seconds) to $tmp/NAME.wall.
# With PREPARE set (a command without shell syntax), it runs untimed before every run.
time_cmd() {
    local name="$1"; shift
    if [[ $have_hyperfine == 1 ]]; then
        local cmdline prepare=()
        cmdline=$(printf '%q ' "$@")
        [[ -n "${PREPARE:-}" ]] && prepare=(--prepare "$PREPARE")
        # -i: scan exits 1 when it has findings at/above --fail-on; exit codes were checked above.
        if ! hyperfine -N -i --style none --warmup "$WARMUP" --runs "$RUNS" "${prepare[@]}" \
                --export-json "$tmp/$name.json" "$cmdline" >"$tmp/$name.hf.log" 2>&1; then
            echo "FAILED: hyperfine on $name:" >&2; cat "$tmp/$name.hf.log" >&2; return 1
        fi
        python3 - "$tmp/$name.json" >"$tmp/$name.wall" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))["results"][0]
print(r["mean"], r["stddev"] or 0.0, r["min"])
EOF
    else
        local i
        for ((i = 0; i < WARMUP; i++)); do ${PREPARE:-true}; "$@" >/dev/null 2>&1; done
        : > "$tmp/$name.times"
        local t0 t1
        for ((i = 0; i < RUNS; i++)); do
            ${PREPARE:-true}
            t0=$(date +%s%N)
            "$@" >/dev/null 2>&1
            t1=$(date +%s%N)
            awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.6f\n", (b - a) / 1e9}' >> "$tmp/$name.times"
        done
        grep -E '^[0-9.]+$' "$tmp/$name.times" | awk '
            { x[NR] = $1; s += $1; if (NR == 1 || $1 < m) m = $1 }
            END { mean = s / NR; for (i = 1; i <= NR; i++) v += (x[i] - mean) ^ 2;
                  sd = NR > 1 ? sqrt(v / (NR - 1)) : 0; print mean, sd, m }' > "$tmp/$name.wall"
    fi
}

failed=0
rows=()   # "label corpus name"
for c in $CORPORA; do
    read -r lang _ext <<<"$(lang_of "$c")"
    dir="$data/$c"
    echo "measuring $c ..." >&2

    # Cold: every file parsed (--no-cache), what a first run or CI without a cache costs.
    if check_run "scan-$c" "0 1" "$BIN" scan "$dir" --format json --no-cache; then
        time_cmd "scan-$c" "$BIN" scan "$dir" --format json --no-cache || failed=1
    else
        failed=1
    fi
    rows+=("scan $c scan-$c")
    if check_run "metrics-$c" "0" "$BIN" metrics "$dir" --format json --no-cache; then
        time_cmd "metrics-$c" "$BIN" metrics "$dir" --format json --no-cache || failed=1
    else
        failed=1
    fi
    rows+=("metrics $c metrics-$c")
    # First run with the result cache: cold plus writing the cache (emptied before each run).
    cache="$tmp/cache-$c"
    if check_run "scan-first-$c" "0 1" "$BIN" scan "$dir" --format json --cache-dir "$cache"; then
        PREPARE="rm -rf $cache" time_cmd "scan-first-$c" "$BIN" scan "$dir" --format json --cache-dir "$cache" || failed=1
    else
        failed=1
    fi
    rows+=("scan-first $c scan-first-$c")
    # Warm: the tree is unchanged since the cached run (an editor rescanning on save).
    if check_run "scan-warm-$c" "0 1" "$BIN" scan "$dir" --format json --cache-dir "$cache"; then
        time_cmd "scan-warm-$c" "$BIN" scan "$dir" --format json --cache-dir "$cache" || failed=1
    else
        failed=1
    fi
    rows+=("scan-warm $c scan-warm-$c")
    if [[ "$SKIP_JSCPD" != 1 ]]; then
        # jscpd: only .py / .rs files, JSON report written to a temp dir (the analogue
        # of `scan --format json`), no console output, .gitignore files not consulted.
        jcmd=("$JSCPD" --format "$lang" --reporters json --silent --no-gitignore -o "$tmp/jscpd-out-$c" "$dir")
        if check_run "jscpd-$c" "0" "${jcmd[@]}"; then
            time_cmd "jscpd-$c" "${jcmd[@]}" || failed=1
            rows+=("jscpd $c jscpd-$c")
        else
            failed=1; rows+=("jscpd $c jscpd-$c")
        fi
        # jscpd as the issue names it, with its default settings: every format it knows
        # (on Django also the .po translations, templates, JavaScript and CSS).
        dcmd=("$JSCPD" --reporters json --silent --no-gitignore -o "$tmp/jscpd-default-out-$c" "$dir")
        if check_run "jscpd-default-$c" "0" "${dcmd[@]}"; then
            time_cmd "jscpd-default-$c" "${dcmd[@]}" || failed=1
        else
            failed=1
        fi
        rows+=("jscpd-default $c jscpd-default-$c")
    fi
done

# ---------------------------------------------------------------- report
echo "| command | corpus | mean wall s (± sd) | min s | peak RSS MiB | ratio vs jscpd (same files) | ratio vs jscpd (defaults) |"
echo "|---|---|---|---|---|---|---|"
json_rows=()
for row in "${rows[@]}"; do
    read -r label corpus name <<<"$row"
    case "$label" in
        scan) cmd="refactor-ai scan --format json --no-cache (cold)" ;;
        metrics) cmd="refactor-ai metrics --format json --no-cache (cold)" ;;
        scan-first) cmd="refactor-ai scan --format json, first run (cold + cache write)" ;;
        scan-warm) cmd="refactor-ai scan --format json, unchanged tree (cached)" ;;
        jscpd) cmd="jscpd --format $([[ $corpus == tokio ]] && echo rust || echo python) (anchor: the same files)" ;;
        jscpd-default) cmd="jscpd with its defaults (every format it knows)" ;;
    esac
    if [[ ! -s "$tmp/$name.wall" ]]; then
        echo "| $cmd | $corpus | FAILED | | | | |"
        continue
    fi
    read -r mean sd min < "$tmp/$name.wall"
    rss_kib=$(cat "$tmp/$name.rss")
    ratio_to() {
        local anchor="$tmp/$1-$corpus.wall" jmean
        [[ -s "$anchor" ]] || { echo "n/a"; return; }
        read -r jmean _ _ < "$anchor"
        awk -v a="$mean" -v b="$jmean" 'BEGIN{printf "%.2f", a / b}'
    }
    ratio=$(ratio_to jscpd)
    ratio_default=$(ratio_to jscpd-default)
    awk -v c="$cmd" -v k="$corpus" -v m="$mean" -v s="$sd" -v n="$min" -v r="$rss_kib" -v q="$ratio" -v d="$ratio_default" \
        'BEGIN{printf "| %s | %s | %.3f ± %.3f | %.3f | %.1f | %s | %s |\n", c, k, m, s, n, r / 1024, q, d}'
    json_rows+=("$(printf '{"command":"%s","corpus":"%s","mean_s":%s,"stddev_s":%s,"min_s":%s,"peak_rss_kib":%s,"ratio_vs_jscpd":%s,"ratio_vs_jscpd_defaults":%s}' \
        "$label" "$corpus" "$mean" "$sd" "$min" "$rss_kib" "$([[ $ratio == n/a ]] && echo null || echo "$ratio")" \
        "$([[ $ratio_default == n/a ]] && echo null || echo "$ratio_default")")")
done

if [[ -n "$BENCH_JSON" ]]; then
    { printf '{"runs":%s,"warmup":%s,"results":[' "$RUNS" "$WARMUP"
      (IFS=,; printf '%s' "${json_rows[*]}")
      printf ']}\n'; } > "$BENCH_JSON"
    echo >&2; echo "raw numbers written to $BENCH_JSON" >&2
fi

if [[ $failed != 0 ]]; then
    echo >&2
    echo "scan-bench: at least one command failed (see above)" >&2
    exit 1
fi
exit 0
