"""The scoreboard: every .pkt under a folder against one profile, classified and counted.

MATCH, DIVERGENCE (first mismatch), UNSUPPORTED (the feature), KERNEL_DRIFT (does not match
and fails on the host kernel too, per the baseline CSV), CRASH (a Python exception in the
runner or the model, or an upstream script the parser rejects: a bug by definition).
"""
from __future__ import annotations

import csv
import os
from collections import Counter, defaultdict

from .result import run_file

VERDICTS = ("MATCH", "DIVERGENCE", "UNSUPPORTED", "KERNEL_DRIFT", "CRASH")
EXCLUDED = ("fastopen", "zerocopy", "timestamping", "epoll", "md5")   # may be UNSUPPORTED


def read_baseline(path: str | None) -> dict[str, str]:
    if not path:
        return {}
    with open(path, newline="") as f:
        return {row["script"]: next(v for k, v in row.items() if k.startswith("host_kernel"))
                for row in csv.DictReader(f)}


def score(suite: str, profile: str, baseline: dict[str, str], **kw) -> list[dict]:
    rows = []
    for dirpath, _, files in sorted(os.walk(suite)):
        for name in sorted(files):
            if not name.endswith(".pkt"):
                continue
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, suite)
            r = run_file(path, profile, **kw)
            verdict = "CRASH" if r.verdict == "SYNTAX" else r.verdict
            host = baseline.get(rel, "")
            if verdict == "DIVERGENCE" and host == "fail":
                verdict = "KERNEL_DRIFT"
            rows.append({"script": rel, "folder": rel.split("/")[0], "verdict": verdict,
                         "feature": r.feature, "host": host,
                         "first_mismatch": r.message.replace("\n", " | ")})
    return rows


def target(rows: list[dict]) -> tuple[int, int]:
    """(MATCH, total) over the scripts that pass on the host outside the excluded folders."""
    pool = [r for r in rows if r["host"] == "pass" and r["folder"] not in EXCLUDED]
    return sum(r["verdict"] == "MATCH" for r in pool), len(pool)


def write(rows: list[dict], out: str, profile: str, suite: str, ip_version: str = "ipv4") -> tuple[str, str]:
    os.makedirs(out, exist_ok=True)
    csv_path = os.path.join(out, "scoreboard.csv")
    with open(csv_path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["script"])
        w.writeheader()
        w.writerows(rows)
    md_path = os.path.join(out, "scoreboard.md")
    with open(md_path, "w") as f:
        f.write(markdown(rows, profile, suite, ip_version))
    return csv_path, md_path


def markdown(rows: list[dict], profile: str, suite: str, ip_version: str = "ipv4") -> str:
    """One scoreboard per family: ipv4 (packetdrill's default) keeps the plain title; another
    family names itself, and its KERNEL_DRIFT still comes from the (IPv4) baseline."""
    total = Counter(r["verdict"] for r in rows)
    m, n = target(rows)
    family = "" if ip_version == "ipv4" else f", --ip_version {ip_version}"
    lines = [f"# tuntcp drill scoreboard: profile {profile}{family}", "",
             f"Suite: `{suite}` ({len(rows)} scripts). "
             f"Target pool (pass on the host kernel, outside {', '.join(EXCLUDED)}): "
             f"**{m} / {n} MATCH ({100 * m / n:.1f} %)**." if n else "No baseline given.", "",
             "| verdict | scripts |", "|---|---|"]
    lines += [f"| {v} | {total.get(v, 0)} |" for v in VERDICTS]
    lines += ["", "## Per folder", "", "| folder | " + " | ".join(VERDICTS) + " |",
              "|---|" + "---|" * len(VERDICTS)]
    per = defaultdict(Counter)
    for r in rows:
        per[r["folder"]][r["verdict"]] += 1
    for folder in sorted(per):
        lines.append(f"| {folder} | " + " | ".join(str(per[folder].get(v, 0)) for v in VERDICTS) + " |")
    feats = Counter(r["feature"] for r in rows if r["verdict"] == "UNSUPPORTED")
    lines += ["", "## UNSUPPORTED features", "", "| feature | scripts |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in feats.most_common()]
    lines += ["", "## Not matching (first mismatch)", "", "| script | verdict | host | first mismatch |",
              "|---|---|---|---|"]
    for r in rows:
        if r["verdict"] not in ("MATCH", "UNSUPPORTED"):
            msg = r["first_mismatch"].replace("|", "\\|")
            lines.append(f"| {r['script']} | {r['verdict']} | {r['host']} | {msg} |")
    return "\n".join(lines) + "\n"
