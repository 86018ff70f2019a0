"""Count the lines and words of a text file and write a small report."""

import argparse
import json
import os
from pathlib import Path

parser = argparse.ArgumentParser()
parser.add_argument("--text", required=True)
parser.add_argument("--greeting", required=True)
parser.add_argument("--repeat", type=int, default=1)
parser.add_argument("--report", required=True)
parser.add_argument("--word-count", required=True)
args = parser.parse_args()

text = Path(args.text).read_text(encoding="utf-8")
lines = [line for line in text.splitlines() if line.strip()]
words = text.split()
for _ in range(args.repeat):
    print(f"{args.greeting}! {len(lines)} lines, {len(words)} words ({os.environ['SUMMARY_STYLE']})")

report = Path(args.report)
report.mkdir(parents=True, exist_ok=True)
(report / "summary.json").write_text(json.dumps({"lines": len(lines), "words": len(words)}))
Path(args.word_count).write_text(f"{len(words)}\n")
Path("outputs").mkdir(exist_ok=True)
Path("outputs/first_line.txt").write_text(lines[0] + "\n")
