"""Compare two runs of ``auto_defaults.py`` row by row: same seed, same labels?

Each row of ``auto_defaults.py`` records a SHA-1 of its labels. Given the
JSON files of two runs (before and after a change, on the same machine),
this lists every (data, method, seed) of both with its ACC in each run and
whether the labels are identical, and writes a Markdown table::

    python benchmarks/compare_labels.py before.json after.json --out report.md

Rows without a fingerprint (older runs) are compared by ACC and NMI. Exit
status 1 if any row differs.
"""

import argparse
import json
import sys
from pathlib import Path


def _key(row):
    return row["data"], row["method"], row["seed"]


def _same(a, b):
    if "labels_sha1" in a and "labels_sha1" in b:
        return a["labels_sha1"] == b["labels_sha1"]
    return a["acc"] == b["acc"] and a["nmi"] == b["nmi"]


def compare(before, after):
    """Rows of both runs: ``(key, acc_before, acc_after, identical)``."""
    first = {_key(r): r for r in before["runs"]}
    second = {_key(r): r for r in after["runs"]}
    return [
        (key, first[key]["acc"], second[key]["acc"], _same(first[key], second[key]))
        for key in sorted(set(first) & set(second))
    ]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    rows = compare(*(json.loads(p.read_text()) for p in (args.before, args.after)))
    n_same = sum(same for *_, same in rows)
    lines = [
        f"{n_same} of {len(rows)} rows have identical labels "
        f"(`{args.before}` against `{args.after}`).",
        "",
        "| data | method | seed | ACC before | ACC after | labels |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {data} | {method} | {seed} | {acc_a:.4f} | {acc_b:.4f} "
        f"| {'identical' if same else 'differ'} |"
        for (data, method, seed), acc_a, acc_b, same in rows
    ]
    text = "\n".join(lines) + "\n"
    if args.out is not None:
        args.out.write_text(text)
    print(lines[0])
    return 0 if n_same == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
