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
    # so only the forward pass can differ. llama.cpp's text is tokenized again (our
    # tokenizer equals llama-tokenize, see `tokenize`) to find the first token that differs.
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    for model in "${models[@]}"; do
        gguf=$($ra models path "$model")
        for prompt in "$fixtures"/greedy/*.prompt; do
            text=$(cat "$prompt"; printf x)
            text=${text%x} # keep trailing newlines, which $(...) and -f would drop
            "$bin/llama-completion" -m "$gguf" -p "$text" --no-escape -n 32 --temp 0 -t 2 \
                -no-cnv --no-display-prompt --no-warmup -c 2048 2>/dev/null >"$tmp/theirs" </dev/null
            $ra models tokenize "$model" --file "$tmp/theirs" --format json >"$tmp/theirs.json"
            for mode in converted no-convert; do
                flag=()
                [[ $mode == no-convert ]] && flag=(--no-convert)
                $ra models run "$model" --raw --file "$prompt" --max-tokens 32 --format json \
                    "${flag[@]}" 2>/dev/null >"$tmp/ours.json"
                python3 - "$model" "$(basename "$prompt")" "$mode" "$tmp/theirs.json" "$tmp/ours.json" <<'PY'
import json, sys
model, name, mode = sys.argv[1:4]
theirs = json.load(open(sys.argv[4]))["ids"]
ours = json.load(open(sys.argv[5]))["tokens"]
agree = 0
while agree < min(len(theirs), len(ours)) and theirs[agree] == ours[agree]:
    agree += 1
print(f"{model:<20} {name:<18} {mode:<11} first {agree} of {len(ours)} tokens agree")
PY
            done
            if [[ $update == --update ]]; then
                cp "$tmp/theirs" "${prompt%.prompt}.$model.expected"
            fi
        done
    done
    ;;
*)
    echo "usage: $0 tokenize|greedy [--update]" >&2
    exit 2
    ;;
esac
