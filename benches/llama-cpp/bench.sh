#!/usr/bin/env bash
# `refactor-ai models bench` side by side with llama.cpp's `llama-bench` on the same GGUF
# files, in one run, reported as ratios (speed and peak memory). The model is also run by
# candle-transformers' models (REFACTOR_AI_ENGINE=candle-transformers), the engine ours
# replaced. Run it on a quiet machine: both engines' threads spin-wait, so anything else
# running (a build, an editor indexing) collapses both.
# Needs benches/llama-cpp/build.sh and the models pulled.
#
#   benches/llama-cpp/bench.sh [MODEL_ID...]    # default: every installed catalog model
set -euo pipefail
cd "$(dirname "$0")/../.."
# LLAMA_BUILD=build-avx2: the AVX2-only llama.cpp (build.sh with AVX2=1).
bin=target/llama.cpp/${LLAMA_BUILD:-build}/bin
threads=${THREADS:-2}
cargo build --release --quiet
ra=target/release/refactor-ai
if (($# == 0)); then
    mapfile -t ids < <($ra models list --format json |
        python3 -c 'import json,sys; [print(m["id"]) for m in json.load(sys.stdin)["models"] if m["installed"]]')
else
    ids=("$@")
fi
printf '%-20s %-34s %7s %8s %8s %8s %8s %9s %8s\n' model engine load_s pp512 tg128 pp_ratio tg_ratio peak_MiB mem_ratio
for id in "${ids[@]}"; do
    gguf=$($ra models path "$id")
    # llama.cpp: pp512 and tg128, 3 repetitions, JSON; its peak RSS from the kernel's
    # accounting of the finished child.
    theirs=$(python3 - "$bin/llama-bench" -m "$gguf" -t "$threads" -p 512 -n 128 -r 3 -o json <<'PY'
import json, resource, subprocess, sys
out = subprocess.run(sys.argv[1:], capture_output=True, text=True, check=True).stdout
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
print(json.dumps({"tests": json.loads(out), "peak_rss_bytes": peak}))
PY
)
    # Ours, then candle-transformers' models (the engine ours replaced; they need the file's
    # Q4_1/Q5_0 tensors converted to Q8_0, which ours runs as they are), for the before/after.
    # ENGINES=refactor-ai runs ours only.
    for engine in ${ENGINES:-refactor-ai candle-transformers}; do
        ours=$(REFACTOR_AI_ENGINE=$engine $ra models bench "$id" --threads "$threads" --repetitions 3 --format json 2>/dev/null)
        python3 - "$id" "$engine" "$theirs" "$ours" <<'PY'
import json, sys
model, label, theirs, ours = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])
rate = {}
for test in theirs["tests"]:
    kind = "pp" if test["n_prompt"] > 0 else "tg"
    rate[kind] = test["avg_ts"]
their_peak = theirs["peak_rss_bytes"] / 2**20
row = ours["models"][0]
pp, tg, peak = row["prompt_tokens_per_second"], row["generation_tokens_per_second"], row["peak_rss_bytes"] / 2**20
if label == "refactor-ai":
    print(f"{model:<20} {'llama.cpp':<34} {'':>7} {rate['pp']:>8.1f} {rate['tg']:>8.1f} {'':>8} {'':>8} {their_peak:>9.0f}")
print(f"{model:<20} {label:<34} {row['load_seconds']:>7.2f} {pp:>8.1f} {tg:>8.1f} "
      f"{pp / rate['pp']:>8.2f} {tg / rate['tg']:>8.2f} {peak:>9.0f} {peak / their_peak:>8.2f}")
PY
    done
done
