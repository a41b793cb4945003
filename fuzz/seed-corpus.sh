#!/usr/bin/env bash
# Seeds fuzz/corpus/analyze with the test fixtures, each prefixed with its language byte
# (0 = python, 1 = rust: the order of the language table).
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p corpus/analyze
find ../tests/fixtures -name '*.py' | while read -r f; do
  { printf '\x00'; cat "$f"; } > "corpus/analyze/py-$(basename "$f")"
done
find ../tests/fixtures -name '*.rs' | while read -r f; do
  { printf '\x01'; cat "$f"; } > "corpus/analyze/rs-$(basename "$f")"
done
ls corpus/analyze | wc -l
