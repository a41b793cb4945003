#!/usr/bin/env python3
"""Print every anti-pattern finding (query rules, not metric thresholds) of a scan with a few
lines of context, numbered, for a reviewer to accept or reject one by one.

    python3 benches/smell-sample.py benches/data/django [--binary target/release/refactor-ai]
"""
import argparse
import json
import pathlib
import subprocess
import sys


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=pathlib.Path)
    parser.add_argument("--binary", default="target/release/refactor-ai")
    parser.add_argument("--context", type=int, default=2)
    args = parser.parse_args()
    scan = subprocess.run(
        [args.binary, "scan", str(args.root), "--format", "json"],
        capture_output=True,
        text=True,
    )
    if scan.returncode not in (0, 1):
        sys.stderr.write(scan.stderr)
        return 2
    report = json.loads(scan.stdout)
    findings = [f for f in report["findings"] if "/" in f["rule"]]
    for number, finding in enumerate(findings, 1):
        location = finding["locations"][0]
        lines = (args.root / location["path"]).read_text(encoding="utf-8").splitlines()
        start = max(0, location["start_line"] - 1 - args.context)
        end = min(len(lines), max(location["end_line"], location["start_line"]) + args.context)
        print(f"[{number}] {finding['rule']} {location['path']}:{location['start_line']}  {finding['message']}")
        for index in range(start, end):
            print(f"    {index + 1:5} | {lines[index]}")
    print(f"{len(findings)} anti-pattern findings", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
