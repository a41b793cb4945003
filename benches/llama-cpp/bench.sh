#!/usr/bin/env bash
# `refactor-ai models bench` side by side with llama.cpp's `llama-bench` on the same GGUF
# files, in one run, reported as ratios. Run it on a quiet machine: both engines' threads
# spin-wait, so anything else running (a build, an editor indexing) collapses both.
# Needs benches/llama-cpp/build.sh and the models pulled.
#
#   benches/llama-cpp/bench.sh [MODEL_ID...]    # default: every installed catalog model
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=target/llama.cpp/build/bin
threads=${THREADS:-2}
cargo build --release --quiet
ra=target/release/refactor-ai
if (($# == 0)); then
    mapfile -t ids < <($ra models list --format json |
        python3 -c 'import json,sys; [print(m["id"]) for m in json.load(sys.stdin)["models"] if m["installed"]]')
else
    ids=("$@")
fi
printf '%-20s %-22s %10s %10s %10s %10s %8s %8s %10s\n' model engine load_s pp512 tg128 "" pp_ratio tg_ratio peak_MiB
for id in "${ids[@]}"; do
    gguf=$($ra models path "$id")
    # llama.cpp: pp512 and tg128, 3 repetitions, JSON.
    theirs=$("$bin/llama-bench" -m "$gguf" -t "$threads" -p 512 -n 128 -r 3 -o json 2>/dev/null)
    for mode in converted no-convert; do
        flag=()
        [[ $mode == no-convert ]] && flag=(--no-convert)
        ours=$($ra models bench "$id" --threads "$threads" --repetitions 3 --format json "${flag[@]}" 2>/dev/null)
        python3 - "$id" "$mode" "$theirs" "$ours" <<'PY'
import json, sys
model, mode, theirs, ours = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])
rate = {}
for test in theirs:
    kind = "pp" if test["n_prompt"] > 0 else "tg"
    rate[kind] = test["avg_ts"]
row = ours["models"][0]
pp, tg = row["prompt_tokens_per_second"], row["generation_tokens_per_second"]
if mode == "converted":
    print(f"{model:<20} {'llama.cpp':<22} {'':>10} {rate['pp']:>10.1f} {rate['tg']:>10.1f}")
print(f"{model:<20} {'refactor-ai ' + mode:<22} {row['load_seconds']:>10.2f} {pp:>10.1f} {tg:>10.1f} {'':>10} "
      f"{pp / rate['pp']:>8.2f} {tg / rate['tg']:>8.2f} {row['peak_rss_bytes'] / 2**20:>10.0f}")
PY
    done
done
