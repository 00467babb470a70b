"""`tuntcp lab list | run N | check N | answers-template N | show N`."""
from __future__ import annotations

import argparse
import importlib
import sys
from dataclasses import fields
from pathlib import Path

from tuntcp.scenarios.labs import LabSpec, LabUserError, all_labs, check, get_lab, load_answers, load_report, template


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="lab_action", required=True, metavar="ACTION")
    sub.add_parser("list", help="the labs, numbered")
    s = sub.add_parser("show", help="print a lab's handout")
    s.add_argument("n", help="lab number")
    s = sub.add_parser("run", help="run a lab's scenario with the lab's settings")
    s.add_argument("n", help="lab number")
    s.add_argument("--out", help="output directory (default out/lab-NN)")
    s.add_argument("--quick", action="store_true", help="a smaller run that finishes sooner")
    s = sub.add_parser("check", help="grade an answers file against your run's report")
    s.add_argument("n", help="lab number")
    s.add_argument("--answers", required=True, metavar="FILE", help="answers file (.toml or .json)")
    s.add_argument("--report", metavar="DIR", help="the run's output directory or report.json "
                   "(default out/lab-NN)")
    s = sub.add_parser("answers-template", help="write an empty answers file")
    s.add_argument("n", help="lab number")
    s.add_argument("--out", metavar="FILE", help="default answers-NN.toml (.json for JSON)")
    s.add_argument("--force", action="store_true", help="overwrite an existing file")


def default_out(lab: LabSpec) -> str:
    return f"out/lab-{lab.number:02d}"


def cmd_list(args) -> int:
    for n, lab in sorted(all_labs().items()):
        mark = "  (scenario pending)" if lab.pending else ""
        print(f"{n:>3}  {lab.title}  [{lab.module.rsplit('.', 1)[-1]}]{mark}")
    return 0


def cmd_show(args) -> int:
    print(get_lab(args.n).markdown, end="")
    return 0


def build_config(lab: LabSpec, out: str, quick: bool):
    """The scenario's Config with the lab's settings (and --quick ones on top)."""
    mod = importlib.import_module(lab.module)
    cls = getattr(mod, lab.config_name)
    kw = {**lab.settings, **(lab.quick if quick else {}), "out": out}
    unknown = sorted(set(kw) - {f.name for f in fields(cls)})
    if unknown:
        raise TypeError(f"{cls.__name__} has no field {', '.join(unknown)}")
    return cls(**kw)


def cmd_run(args) -> int:
    import trio
    lab = get_lab(args.n)
    if lab.pending:
        raise LabUserError(f"lab {lab.number}'s scenario ({lab.module}) has not landed yet")
    out = args.out or default_out(lab)
    mod = importlib.import_module(lab.module)
    try:
        cfg = build_config(lab, out, args.quick)
        if hasattr(cfg, "check"):
            cfg.check()
    except (TypeError, ValueError) as e:
        raise LabUserError(f"lab {lab.number}'s settings do not fit {lab.module}: {e}") from None
    print(f"lab {lab.number}: {lab.title}\nrunning {lab.module.rsplit('.', 1)[-1]}"
          f"{' (quick)' if args.quick else ''} -> {out}", flush=True)
    run = getattr(mod, lab.run_name)
    try:
        trio.run(run, cfg)
    except ValueError as e:
        if type(e).__module__ != lab.module:      # the scenario's own user-error class only
            raise
        raise LabUserError(str(e)) from None
    except KeyboardInterrupt:
        print("tuntcp lab: interrupted; namespaces removed", file=sys.stderr)
        return 130
    for line in headline_lines(Path(out) / "report.json"):
        print(line)
    print(f"\nreport: {Path(out) / 'report.json'}" + (f", {Path(out) / 'report.md'}"
          if (Path(out) / "report.md").exists() else ""))
    if lab.look_at:
        print("look at:")
        for line in lab.look_at:
            print(f"  - {line}")
    print(f"\nanswer in answers-{lab.number:02d}.toml (tuntcp lab answers-template {lab.number}), then:\n"
          f"  tuntcp lab check {lab.number} --answers answers-{lab.number:02d}.toml --report {out}")
    return 0


def headline_lines(path: Path) -> list[str]:
    """The run's finding: report["headline"] (a dict or text), or comparison.headline."""
    import json
    try:
        report = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    h = report.get("headline") or report.get("comparison", {}).get("headline")
    if isinstance(h, dict) and isinstance(h.get("summary"), str):
        h = h["summary"]
    if isinstance(h, dict):
        def short(v):
            t = json.dumps(v) if not isinstance(v, str) else v
            return t if len(t) <= 160 else t[:157] + "..."
        return ["headline:"] + [f"  {k}: {short(v)}" for k, v in h.items()]
    return [f"headline: {h}"] if h else []


def cmd_check(args) -> int:
    lab = get_lab(args.n)
    answers = load_answers(args.answers, lab)
    where = args.report or default_out(lab)
    report = load_report(where, lab)
    results = check(lab, answers, report)
    print(f"lab {lab.number}: {args.answers} against the report in {where}")
    for r in results:
        print(f"{r.qid:>4}  {'PASS' if r.ok else 'FAIL'}" + ("" if r.ok else f"  {r.message}"))
    passed = sum(r.ok for r in results)
    print(f"\nlab {lab.number}: {passed}/{len(results)} passed")
    return 0 if passed == len(results) else 1


def cmd_template(args) -> int:
    lab = get_lab(args.n)
    path = Path(args.out or f"answers-{lab.number:02d}.toml")
    if path.exists() and not args.force:
        raise LabUserError(f"{path} exists; pass --force to overwrite it")
    if path.suffix == ".json":
        import json
        text = json.dumps({q: "" for q in template_ids(lab)}, indent=2) + "\n"
    else:
        text = template(lab)
    path.write_text(text)
    print(f"wrote {path} ({len(lab.checks)} questions); read them with: tuntcp lab show {lab.number}")
    return 0


def template_ids(lab: LabSpec) -> list[str]:
    from tuntcp.scenarios.labs import _qkey
    return sorted(lab.checks, key=_qkey)


ACTIONS = {"list": cmd_list, "show": cmd_show, "run": cmd_run, "check": cmd_check,
           "answers-template": cmd_template}


def main(args) -> int:
    try:
        return ACTIONS[args.lab_action](args)
    except (LabUserError, OSError) as e:
        msg = (str(e) or type(e).__name__).splitlines()[0]
        print(f"tuntcp lab: error: {msg}", file=sys.stderr)
        return 2
