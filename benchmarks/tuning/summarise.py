"""Summarise the JSON lines of the tuning scripts: one row per tag and data set.

Run:  python benchmarks/tuning/summarise.py FILE.jsonl ...

Lines of ``dec_variants.py`` (DEC's phases run by hand, with the
autoencoder + k-means accuracy before self-training) and of
``estimator_variants.py`` (whole estimators) make two kinds of table; give
one kind of file per call.
"""

import collections
import json
import sys

import numpy as np


def grouped_rows(paths):
    """``{(tag, data): [row, ...]}`` in the order the groups first appear."""
    groups = collections.defaultdict(list)
    for path in paths:
        with open(path) as lines:
            for line in lines:
                row = json.loads(line)
                groups[(row["tag"], row["data"])].append(row)
    return groups


def phase_table(groups):
    """Markdown table of ``dec_variants.py`` rows."""
    lines = [
        "| tag | data | network | batch | lr | steps | seeds | AE+k-means ACC "
        "| DEC ACC mean | DEC ACC worst | s per fit |",
        "|" + " --- |" * 11,
    ]
    for (tag, data), rows in sorted(groups.items(), key=lambda kv: kv[0][::-1]):
        first = rows[0]
        dec = [r.get("dec_acc", np.nan) for r in rows]
        lines.append(
            f"| {tag} | {data} | {'-'.join(map(str, first['dims']))} | {first['bs']} "
            f"| {first['lr']:g} | {first['steps']} | {len(rows)} "
            f"| {np.mean([r['ae_acc'] for r in rows]):.3f} "
            f"| {np.mean(dec):.3f} | {np.min(dec):.3f} "
            f"| {np.mean([r['t_total'] for r in rows]):.1f} |"
        )
    return "\n".join(lines)


def estimator_table(groups):
    """Markdown table of ``estimator_variants.py`` rows."""
    lines = [
        "| tag | data | seeds | ACC mean | ACC worst | NMI mean | clusters used (min) "
        "| s per fit | settings (first seed) |",
        "|" + " --- |" * 9,
    ]
    for (tag, data), rows in groups.items():
        acc = [r["acc"] for r in rows]
        settings = ", ".join(f"{k}={v}" for k, v in rows[0]["settings"].items())
        lines.append(
            f"| {tag} | {data} | {len(rows)} | {np.mean(acc):.3f} | {np.min(acc):.3f} "
            f"| {np.mean([r['nmi'] for r in rows]):.3f} "
            f"| {min(r['clusters_used'] for r in rows)} "
            f"| {np.mean([r['seconds'] for r in rows]):.1f} | {settings} |"
        )
    return "\n".join(lines)


def main(paths):
    groups = grouped_rows(paths)
    first = next(iter(groups.values()))[0]
    print(phase_table(groups) if "dec_acc" in first else estimator_table(groups))


if __name__ == "__main__":
    main(sys.argv[1:])
