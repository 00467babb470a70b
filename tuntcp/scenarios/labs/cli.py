"""`tuntcp lab list | run N | check N | answers-template N | show N`."""
from __future__ import annotations

import argparse
import importlib
import os
from dataclasses import fields
from pathlib import Path

from tuntcp.errors import UserError
from tuntcp.scenarios.rig import family_of, family_option
from tuntcp.scenarios.labs import LabSpec, LabUserError, all_labs, check, get_lab, load_answers, load_report, template
from tuntcp import signals


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="lab_action", required=True, metavar="ACTION")
    sub.add_parser("list", help="the labs, numbered")
    s = sub.add_parser("show", help="print a lab's handout")
    s.add_argument("n", help="lab number")
    s = sub.add_parser("run", help="run a lab's scenario with the lab's settings")
    s.add_argument("n", help="lab number")
    s.add_argument("--out", metavar="DIR", help="output folder (default out/lab-NN)")
    s.add_argument("--quick", action="store_true", help="a smaller run that finishes sooner")
    family_option(s)
    s.add_argument("--name", help="this run's endpoint name for `tuntcp ss/nstat --name` "
                   "(default lab-NN-PID: unique, so several learners' labs run at once)")
    s = sub.add_parser("check", help="grade an answers file against your run's report")
    s.add_argument("n", help="lab number")
    s.add_argument("--answers", required=True, metavar="FILE", help="answers file (.toml or .json)")
    s.add_argument("--report", metavar="DIR", help="the run's output directory or report.json "
                   "(default out/lab-NN)")
    s = sub.add_parser("answers-template", help="write an empty answers file")
    s.add_argument("n", help="lab number")
    s.add_argument("--file", dest="out", metavar="FILE",
                   help="the answers file to write (default answers-NN.toml; .json for JSON)")
    s.add_argument("--out", dest="out", help=argparse.SUPPRESS)   # its old name
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


def build_config(lab: LabSpec, out: str, quick: bool, name: str | None = None, family: int = 4):
    """The scenario's Config with the lab's settings (and --quick ones on top); ``name`` is the
    endpoint's control-socket name where the scenario serves one; ``family`` 6 runs the lab over
    IPv6 (a scenario without a ``family`` field cannot)."""
    mod = importlib.import_module(lab.module)
    cls = getattr(mod, lab.config_name)
    kw = {**lab.settings, **(lab.quick if quick else {}), "out": out}
    if family != 4:
        if "family" not in {f.name for f in fields(cls)}:
            raise LabUserError(f"--family ipv6: lab {lab.number}'s scenario ({lab.module.rsplit('.', 1)[-1]}) "
                               "has no IPv6 run (its Config takes no family)")
        kw["family"] = family
    if name is not None and "control_name" in {f.name for f in fields(cls)}:
        kw["control_name"] = name
    unknown = sorted(set(kw) - {f.name for f in fields(cls)})
    if unknown:
        raise TypeError(f"{cls.__name__} has no field {', '.join(unknown)}")
    return cls(**kw)


def cmd_run(args) -> int:
    import trio

    from tuntcp.errors import make_out_dir
    from tuntcp.scenarios.rig import require_privileges
    lab = get_lab(args.n)
    if lab.pending:
        raise LabUserError(f"lab {lab.number}'s scenario ({lab.module}) has not landed yet")
    out = args.out or default_out(lab)
    name = args.name or f"lab-{lab.number:02d}-{os.getpid()}"
    mod = importlib.import_module(lab.module)
    try:
        cfg = build_config(lab, out, args.quick, name, family_of(args))
        if hasattr(cfg, "check"):
            cfg.check()
    except (TypeError, ValueError) as e:
        if isinstance(e, UserError):
            raise
        raise LabUserError(f"lab {lab.number}'s settings do not fit {lab.module}: {e}") from None
    if lab.needs_privileges:
        require_privileges()
    make_out_dir(out)
    print(f"lab {lab.number}: {lab.title}\nrunning {lab.module.rsplit('.', 1)[-1]}"
          f"{' (quick)' if args.quick else ''} -> {out}", flush=True)
    signals.run(getattr(mod, lab.run_name), cfg)
    # where to look, not what the run found: the learner reads the report to answer
    print(f"\nreport: {Path(out) / 'report.json'}" + (f", {Path(out) / 'report.md'}"
          if (Path(out) / "report.md").exists() else ""))
    if lab.look_at:
        print("look at:")
        for line in lab.look_at:
            print(f"  - {line}")
    print(f"\nanswer in answers-{lab.number:02d}.toml (tuntcp lab answers-template {lab.number}), then:\n"
          f"  tuntcp lab check {lab.number} --answers answers-{lab.number:02d}.toml --report {out}")
    return 0


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
    try:
        path.write_text(text)
    except OSError as e:
        raise LabUserError(f"cannot write {path}: {e.strerror}") from None
    print(f"wrote {path} ({len(lab.checks)} questions); read them with: tuntcp lab show {lab.number}")
    return 0


def template_ids(lab: LabSpec) -> list[str]:
    from tuntcp.scenarios.labs import _qkey
    return sorted(lab.checks, key=_qkey)


ACTIONS = {"list": cmd_list, "show": cmd_show, "run": cmd_run, "check": cmd_check,
           "answers-template": cmd_template}


def main(args) -> int:
    # LabUserError (a UserError) and Ctrl-C are reported once, by tuntcp.cli.main
    return ACTIONS[args.lab_action](args)
