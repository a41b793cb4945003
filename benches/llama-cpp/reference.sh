#!/usr/bin/env bash
# Compares refactor-ai's tokenizer and greedy generation with llama.cpp's on the same GGUF
# files. Needs benches/llama-cpp/build.sh first and the models pulled
# (`refactor-ai models pull smollm2-135m`, `... qwen2.5-coder-0.5b`).
#
#   benches/llama-cpp/reference.sh tokenize [--update]   # corpus ids vs llama-tokenize
#   benches/llama-cpp/reference.sh greedy [--update]     # 32 greedy tokens, 3 prompts
#
# --update rewrites the expected llama.cpp outputs under tests/fixtures/llm/, which the
# test suite checks refactor-ai against.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=target/llama.cpp/build/bin
what=${1:?tokenize or greedy}
update=${2:-}
if [[ -z ${RA:-} ]]; then
    cargo build --release --quiet
fi
ra=${RA:-target/release/refactor-ai}
models=(smollm2-135m qwen2.5-coder-0.5b)
fixtures=tests/fixtures/llm

case $what in
tokenize)
    total=0 agree=0
    for model in "${models[@]}"; do
        gguf=$($ra models path "$model")
        for file in "$fixtures"/tokenize/*.py "$fixtures"/tokenize/*.rs "$fixtures"/tokenize/*.txt; do
            expected=$("$bin/llama-tokenize" -m "$gguf" -f "$file" --ids --no-bos --no-escape --log-disable 2>/dev/null | tail -1)
            actual=$($ra models tokenize "$model" --file "$file")
            total=$((total + 1))
            if [[ $expected == "$actual" ]]; then
                agree=$((agree + 1))
                echo "same   $model $(basename "$file") ($(tr -cd ',' <<<"$expected" | wc -c) + 1 tokens)"
            else
                echo "DIFFER $model $(basename "$file")"
                diff <(tr ',' '\n' <<<"$expected") <(tr ',' '\n' <<<"$actual") | head -10 || true
            fi
            if [[ $update == --update ]]; then
                echo "$expected" >"$file.$model.ids"
            fi
        done
    done
    echo "tokenizer agreement with llama-tokenize: $agree / $total files"
    ;;
greedy)
    # Both sides get the same raw text (the chat template is already in the prompt files),
    # so only the forward pass can differ. llama.cpp runs twice: with flash attention off,
    # the same attention arithmetic as candle's (softmax(QK^T)V; the reference the fixtures
    # record), and with its default (flash attention on CPU), which rounds differently and
    # shows how far two correct engines drift apart on near-ties. Its texts are tokenized
    # again (our tokenizer equals llama-tokenize, see `tokenize`) to find the first token
    # that differs.
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    agreement() {
        python3 - "$@" <<'PY'
import json, sys
label, a, b, a_key, b_key = sys.argv[1:6]
a = json.load(open(a))[a_key]
b = json.load(open(b))[b_key]
agree = 0
while agree < min(len(a), len(b)) and a[agree] == b[agree]:
    agree += 1
print(f"{label:<58} first {min(agree, 32):>2} of 32 tokens agree")
PY
    }
    for model in "${models[@]}"; do
        gguf=$($ra models path "$model")
        for prompt in "$fixtures"/greedy/*.prompt; do
            name=$(basename "$prompt" .prompt)
            text=$(cat "$prompt"; printf x)
            text=${text%x} # keep trailing newlines, which $(...) and -f would drop
            for attention in off on; do
                "$bin/llama-completion" -m "$gguf" -p "$text" --no-escape -n 32 --temp 0 -t 2 \
                    -no-cnv --no-display-prompt --no-warmup -c 2048 -fa "$attention" \
                    2>/dev/null >"$tmp/flash-$attention" </dev/null
                $ra models tokenize "$model" --file "$tmp/flash-$attention" --format json \
                    >"$tmp/flash-$attention.json"
            done
            agreement "$model $name: llama.cpp flash attention on vs off" \
                "$tmp/flash-on.json" "$tmp/flash-off.json" ids ids
            for mode in no-convert converted; do
                flag=()
                [[ $mode == no-convert ]] && flag=(--no-convert)
                $ra models run "$model" --raw --file "$prompt" --max-tokens 32 --format json \
                    "${flag[@]}" 2>/dev/null >"$tmp/ours.json"
                agreement "$model $name: refactor-ai $mode vs llama.cpp (off)" \
                    "$tmp/ours.json" "$tmp/flash-off.json" tokens ids
                agreement "$model $name: refactor-ai $mode vs llama.cpp (on)" \
                    "$tmp/ours.json" "$tmp/flash-on.json" tokens ids
            done
            if [[ $update == --update ]]; then
                cp "$tmp/flash-off" "${prompt%.prompt}.$model.expected"
            fi
        done
    done
    ;;
*)
    echo "usage: $0 tokenize|greedy [--update]" >&2
    exit 2
    ;;
esac
