"""Teaching labs: one Markdown handout per scenario plus a machine check of the learner's answers.

A lab is ``NN-name.md`` in this folder (sections: Goal, Story, Setup, Steps, Predict, Observe,
Expected, Auto-check, What can go wrong, Going further, Cleanup; numbered questions written as
``**Q1.** text``) and a spec module ``lNN_name.py`` with ``LAB = LabSpec(...)`` naming the
scenario to run, its full and ``--quick`` settings and one check per question.

The learner writes answers into a TOML (or JSON) file, ``Q1 = 1`` ..., and ``tuntcp lab check``
grades each one: questions about measured values against the learner's own ``report.json``,
conceptual ones against fixed answers, matched tolerantly (case, spaces, units). A failed
question gets a hint that points at a report field or a command, never at the answer.
"""
from __future__ import annotations

from tuntcp.errors import UserError

import importlib
import importlib.util
import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
SECTIONS = ("Goal", "Story", "Setup", "Steps", "Predict", "Observe", "Expected", "Auto-check",
            "What can go wrong", "Going further", "Cleanup")


class LabUserError(UserError, ValueError):
    """A learner mistake (unknown lab, missing/invalid answers file or report): one line, exit 2."""


class Unparsable(Exception):
    """The answer is not of the question's form (one number, yes/no)."""


class NotCheckable(Exception):
    """The report lacks what a measured question needs; the message says what to re-run."""


# ---- tolerant matching ------------------------------------------------------------------------

_NUM = re.compile(r"[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?")
_UNITS = {"": 1, "b": 1, "byte": 1, "bytes": 1, "ms": 1, "s": 1, "sec": 1, "x": 1, "times": 1,
          "%": 1, "segments": 1, "segment": 1, "connections": 1, "conns": 1, "packets": 1,
          "k": 1000, "kb": 1000, "kib": 1024}


def parse_number(answer: Any) -> float | None:
    """A number from an answer: 1578, "1578", "1 578 bytes", "1,578 B", "about 64x", "2^6".
    None unless the answer holds exactly one number (words around it are fine)."""
    if isinstance(answer, bool) or answer is None:
        return None
    if isinstance(answer, (int, float)):
        return float(answer)
    s = str(answer).strip().lower()
    s = re.sub(r"(?<=\d)[,_\u202f\u2009 ](?=\d{3}\b)", "", s)       # 1,578 / 1 578 / 1_578
    m = re.fullmatch(r"(\d+)\s*(?:\^|\*\*)\s*(\d+)", s)
    if m:
        return float(int(m.group(1)) ** int(m.group(2)))
    nums = list(_NUM.finditer(s))
    if len(nums) != 1:
        return None
    m = nums[0]
    before, unit = s[:m.start()], s[m.end():].strip().rstrip(".")
    if not re.fullmatch(r"[a-z~≈ ]*x?\s*", before):
        return None
    if unit not in _UNITS and not re.fullmatch(r"[a-z %/]*", unit):
        return None
    return float(m.group(0)) * _UNITS.get(unit.split(" ", 1)[0] if unit else "", 1)


def norm_text(answer: Any) -> str:
    """Lower case, single spaces, no surrounding quotes/backticks/punctuation."""
    s = str(answer).strip().strip("`'\".;:").lower()
    return re.sub(r"\s+", " ", s)


_YES = {"yes", "y", "true", "1", ">=10x", "≥10x"}
_NO = {"no", "n", "false", "0", "<10x"}


def parse_yes_no(answer: Any) -> bool | None:
    if isinstance(answer, bool):
        return answer
    s = norm_text(answer)
    first = s.split(" ", 1)[0].strip(",.!") if s else ""
    if s in _YES or first in ("yes", "y"):
        return True
    if s in _NO or first in ("no", "n"):
        return False
    return None


def _number(answer: Any) -> float:
    got = parse_number(answer)
    if got is None:
        raise Unparsable("write one number (units are fine: 42, \"42 bytes\")")
    return got


as_number = _number      # for labs' own checks


def _yes_no(answer: Any) -> bool:
    got = parse_yes_no(answer)
    if got is None:
        raise Unparsable("answer yes or no")
    return got


# ---- questions ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Check:
    """How one question is graded. ``grade(answer, report)`` returns True/False or raises
    NotCheckable; ``hint`` says where to look (a report field, a command, a section)."""
    grade: Callable[[Any, dict], bool]
    hint: str
    measured: bool = False


def measured_number(values: Callable[[dict], set | list | float | int], hint: str,
                    rel: float = 0.0, abs_tol: float = 0.0) -> Check:
    """The answer must equal one of the values the learner's own report shows (within rel of
    it, or abs_tol)."""
    def grade(answer, report):
        want = values(report)
        if not isinstance(want, (set, list, tuple, frozenset)):
            want = {want}
        want = {float(w) for w in want if w is not None}
        if not want:
            raise NotCheckable("your report has no value for this question")
        got = _number(answer)
        return any(abs(got - w) <= max(rel * abs(w), abs_tol) for w in want)
    return Check(grade, hint, measured=True)


def measured_text(values: Callable[[dict], str | set], hint: str) -> Check:
    """The answer must name one of the values the report shows (case and spaces ignored)."""
    def grade(answer, report):
        want = values(report)
        want = {norm_text(w) for w in ({want} if isinstance(want, str) else want) if w is not None}
        if not want:
            raise NotCheckable("your report has no value for this question")
        return norm_text(answer) in want
    return Check(grade, hint, measured=True)


def measured_yes_no(truth: Callable[[dict], bool | None], hint: str) -> Check:
    """A yes/no whose right answer depends on what the learner's run measured."""
    def grade(answer, report):
        want = truth(report)
        if want is None:
            raise NotCheckable("your report has no value for this question")
        return _yes_no(answer) is want
    return Check(grade, hint, measured=True)


def fixed_number(value: float, hint: str, rel: float = 0.0, abs_tol: float = 0.0) -> Check:
    def grade(answer, report):
        return abs(_number(answer) - value) <= max(rel * abs(value), abs_tol)
    return Check(grade, hint)


def fixed_yes_no(value: bool, hint: str) -> Check:
    return Check(lambda answer, report: _yes_no(answer) is value, hint)


def fixed_text(accept: list[str], hint: str, reject: list[str] = ()) -> Check:
    """Passes when the normalised answer matches one of the ``accept`` regexes (searched, so
    extra words are fine) and none of ``reject``."""
    acc = [re.compile(a) for a in accept]
    rej = [re.compile(r) for r in reject]

    def grade(answer, report):
        s = norm_text(answer)
        return bool(s) and any(a.search(s) for a in acc) and not any(r.search(s) for r in rej)
    return Check(grade, hint)


def commit_prefix(full_sha: str, hint: str, min_len: int = 7) -> Check:
    """A git commit named by any prefix of at least ``min_len`` hex digits."""
    def grade(answer, report):
        s = norm_text(answer).removeprefix("commit").strip()
        m = re.search(r"[0-9a-f]{%d,40}" % min_len, s)
        return bool(m) and full_sha.startswith(m.group(0))
    return Check(grade, hint)


# ---- labs ---------------------------------------------------------------------------------------

@dataclass
class LabSpec:
    number: int
    slug: str                     # NN-<slug>.md
    module: str                   # scenario module, e.g. "tuntcp.scenarios.storm"
    checks: dict[str, Check]      # "Q1" -> Check
    settings: dict = field(default_factory=dict)   # Config overrides for `lab run`
    quick: dict = field(default_factory=dict)      # ... and on top of them with --quick
    config_name: str = "Config"
    run_name: str = "run"
    report_scenario: str | None = None   # report["scenario"] must equal this when set
    look_at: list[str] = field(default_factory=list)   # printed after `lab run`
    needs_privileges: bool = True     # False: the scenario runs in virtual time (no namespace)

    @property
    def md_path(self) -> Path:
        return HERE / f"{self.number:02d}-{self.slug}.md"

    @property
    def markdown(self) -> str:
        return self.md_path.read_text()

    @property
    def title(self) -> str:
        first = self.markdown.splitlines()[0]
        return re.sub(r"^#\s*Lab\s*\d+\s*:\s*", "", first).strip()

    @property
    def pending(self) -> bool:
        """The scenario module has not landed yet."""
        return importlib.util.find_spec(self.module) is None

    def questions(self) -> dict[str, str]:
        """Question id -> text, from the handout's ``**Qn.**`` lines (in order)."""
        return parse_questions(self.markdown)

    def question_sections(self) -> dict[str, str]:
        """Question id -> the handout section it is asked in ("Predict", "Observe" ...)."""
        return question_sections(self.markdown)


def parse_questions(md: str) -> dict[str, str]:
    out: dict[str, str] = {}
    cur = None
    for line in md.splitlines():
        m = re.match(r"^\s*(?:[-*]\s*)?\*\*(Q\d+)\.\*\*\s*(.*)$", line)
        if m:
            cur = m.group(1)
            out[cur] = m.group(2).strip()
        elif cur and line.strip() and not line.lstrip().startswith("#"):
            out[cur] += " " + line.strip()
        else:
            cur = None
    return out


def question_sections(md: str) -> dict[str, str]:
    out: dict[str, str] = {}
    section = ""
    for line in md.splitlines():
        m = re.match(r"^##\s+(.+)$", line)
        if m:
            section = m.group(1).strip()
        m = re.match(r"^\s*(?:[-*]\s*)?\*\*(Q\d+)\.\*\*", line)
        if m:
            out[m.group(1)] = section
    return out


def sections(md: str) -> list[str]:
    return [m.group(1).strip() for m in re.finditer(r"^##\s+(.+)$", md, re.M)]


def all_labs() -> dict[int, LabSpec]:
    labs = {}
    for p in sorted(HERE.glob("l[0-9][0-9]_*.py")):
        spec = importlib.import_module(f"{__name__}.{p.stem}").LAB
        labs[spec.number] = spec
    return labs


def get_lab(n: int | str) -> LabSpec:
    labs = all_labs()
    try:
        return labs[int(n)]
    except (ValueError, KeyError):
        raise LabUserError(f"no lab {n!r}; labs are {', '.join(map(str, labs))} (tuntcp lab list)") from None


# ---- answers and reports ---------------------------------------------------------------------------

def load_answers(path: str | Path, lab: LabSpec) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise LabUserError(f"answers file {p} not found (tuntcp lab answers-template {lab.number} writes one)")
    text = p.read_text(errors="replace")
    try:
        data = json.loads(text) if p.suffix == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as e:
        kind = "JSON" if p.suffix == ".json" else "TOML"
        raise LabUserError(f"answers file {p} is not valid {kind}: {str(e).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise LabUserError(f"answers file {p} must hold a table of Q1 = ... entries")
    answers = {str(k).strip().upper(): v for k, v in data.items()}
    unknown = sorted(set(answers) - set(lab.checks), key=_qkey)
    if unknown:
        raise LabUserError(f"answers file {p} has {', '.join(unknown)}; lab {lab.number} asks "
                           f"{', '.join(sorted(lab.checks, key=_qkey))}")
    return answers


def load_report(path: str | Path, lab: LabSpec) -> dict:
    p = Path(path)
    if p.is_dir() or p.suffix != ".json":
        p = p / "report.json"
    if not p.is_file():
        raise LabUserError(f"no report at {p} (run `tuntcp lab run {lab.number}` first, or pass --report DIR)")
    try:
        report = json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise LabUserError(f"report {p} is not valid JSON: {str(e).splitlines()[0]}") from None
    if not isinstance(report, dict):
        raise LabUserError(f"report {p} is not a JSON object")
    if lab.report_scenario and report.get("scenario") != lab.report_scenario:
        raise LabUserError(f"report {p} is from scenario {report.get('scenario')!r}; lab {lab.number} "
                           f"needs a {lab.report_scenario!r} report")
    return report


def _qkey(q: str):
    m = re.fullmatch(r"Q(\d+)", q)
    return (0, int(m.group(1))) if m else (1, q)


@dataclass
class Result:
    qid: str
    ok: bool
    message: str        # "PASS", or what to look at


def check(lab: LabSpec, answers: dict[str, Any], report: dict) -> list[Result]:
    """Grade every question of ``lab``; unanswered ones fail with their hint."""
    results = []
    for qid in sorted(lab.checks, key=_qkey):
        c = lab.checks[qid]
        ans = answers.get(qid)
        if ans is None or (isinstance(ans, str) and not ans.strip()):
            results.append(Result(qid, False, f"not answered; {c.hint}"))
            continue
        try:
            ok = c.grade(ans, report)
        except Unparsable as e:
            results.append(Result(qid, False, str(e)))
            continue
        except NotCheckable as e:
            results.append(Result(qid, False, f"{e}; {c.hint}"))
            continue
        except (KeyError, IndexError, TypeError, ValueError, ZeroDivisionError) as e:
            results.append(Result(qid, False, f"your report lacks what this question reads "
                                              f"({type(e).__name__}: {e}); {c.hint}"))
            continue
        results.append(Result(qid, ok, "PASS" if ok else f"not yet: {c.hint}"))
    return results


def template(lab: LabSpec) -> str:
    """An empty answers file: every question as a comment above ``Qn = ""``."""
    qs = lab.questions()
    where = lab.question_sections()
    out = [f"# Answers for lab {lab.number}: {lab.title}",
           "# Numbers may carry units (\"42 bytes\"); text is matched ignoring case and spaces.",
           f"# Check with: tuntcp lab check {lab.number} --answers THIS_FILE --report out/lab-{lab.number:02d}",
           ""]
    for qid in sorted(lab.checks, key=_qkey):
        if where.get(qid) == "Predict":
            kind = "predict: answer before running"
        else:
            kind = "from your run" if lab.checks[qid].measured else "concept"
        text = qs.get(qid, "")
        out.append(f"# {qid} ({kind}): {text}")
        out.append(f'{qid} = ""')
        out.append("")
    return "\n".join(out)
