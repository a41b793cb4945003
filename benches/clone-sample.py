#!/usr/bin/env python3
"""Print a random sample of reported clone classes for reading by hand (precision).

usage: benches/clone-sample.py CORPUS [N] [SEED] [--main]   (runs target/release/refactor-ai)
--main samples only classes with a copy outside test code.
Shows each class's message and properties, then the first lines of its first two copies.
"""
import json
import random
import subprocess
import sys

main_only = "--main" in sys.argv
args = [arg for arg in sys.argv[1:] if arg != "--main"]
corpus = args[0]
n = int(args[1]) if len(args) > 1 else 20
seed = int(args[2]) if len(args) > 2 else 1
lines_shown = 12

out = subprocess.run(
    ["target/release/refactor-ai", "scan", corpus, "--format", "json", "--no-cache"],
    capture_output=True, text=True, check=False,
).stdout
findings = [f for f in json.loads(out)["findings"] if f["kind"] == "duplicate"]
if main_only:
    findings = [f for f in findings if not f["properties"]["in_tests"]]
random.Random(seed).shuffle(findings)
print(f"{len(findings)} duplicate findings; sample of {min(n, len(findings))} (seed {seed})\n")
for index, finding in enumerate(findings[:n], 1):
    p = finding["properties"]
    print(f"## {index}. {finding['rule']} ({p['unit']}, {p['lines']} lines, {p['instances']} copies, value {p['value']})")
    print(f"   {finding['message']}")
    for location in finding["locations"][:2]:
        path = f"{corpus}/{location['path']}"
        with open(path, encoding="utf-8") as source:
            text = source.read().splitlines()
        start, end = location["start_line"], location["end_line"]
        print(f"   --- {location['path']}:{start}-{end}")
        for line in text[start - 1:min(end, start - 1 + lines_shown)]:
            print(f"   | {line}")
    print()
