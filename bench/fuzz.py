"""Longer fuzzing of every parser and decoder, coverage-guided when atheris is installed. Prints one JSON object.

    python bench/fuzz.py                       # 120 s in all, split over the targets of tests/fuzz/targets.py
    python bench/fuzz.py --seconds 600 --targets chirpstack_json,chirpstack_protobuf
    python bench/fuzz.py --engine hypothesis   # without atheris: hypothesis's structure-aware strategies
    python bench/fuzz.py --seed-corpus         # (re)write the seed inputs into the corpora, then stop

Engines: `atheris` (libFuzzer driving the instrumented clapas code: coverage-guided; `pip install atheris`, wheels
for Linux x86-64) is used when it imports, else `hypothesis` (the strategies of tests/fuzz/strategies.py, not
coverage-guided). With atheris each target runs in its own process, starting from its corpus
(tests/fuzz/corpus/<target>/) and the seeds; at the end the inputs that reached new coverage are merged into the
corpus (libFuzzer `-merge=1`, so only those adding coverage are kept, at most `--max-len` bytes each). Any input
that breaks a target's property is copied to the corpus as `crash-<sha1>` — `make test` replays it from then on,
so it stays a regression case once fixed — and fuzzing goes on for the rest of the budget.

Per target the JSON says: `examples` run, `failures` (with the crash files), `new_corpus` entries and the corpus
size. Figures depend on the machine: a shared, loaded one runs fewer examples in the same time.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

CORPUS = ROOT / "tests" / "fuzz" / "corpus"


def _name(data: bytes, kind: str) -> str:
    return f"{kind}-{hashlib.sha1(data).hexdigest()[:16]}"


def seed_corpus(names: list[str]) -> dict[str, int]:
    """Write every target's seeds into its corpus folder (existing files are kept); how many were new."""
    from tests.fuzz.targets import TARGETS

    added: dict[str, int] = {}
    for name in names:
        folder = CORPUS / name
        folder.mkdir(parents=True, exist_ok=True)
        added[name] = 0
        for data in TARGETS[name].seeds():
            path = folder / _name(data, "seed")
            if not path.exists():
                path.write_bytes(data)
                added[name] += 1
    return added


# --- atheris: one child process per target -------------------------------------------------------------------------
def _child(name: str, argv: list[str]) -> None:
    """Runs inside the child: instrument clapas, then hand over to libFuzzer (which exits the process)."""
    import atheris

    with atheris.instrument_imports(include=["clapas", "tests.fuzz"]):
        from tests.fuzz.targets import TARGETS

        target = TARGETS[name]
        for seed in target.seeds():  # imports what the target needs, inside the instrumentation
            target.run(seed)
    # libFuzzer re-executes argv[0] for -merge: the wrapper script that starts this child again
    atheris.Setup([os.environ.get("CLAPAS_FUZZ_SELF", sys.argv[0]), *argv], target.run)
    atheris.Fuzz()


def _libfuzzer(name: str, args: list[str], timeout: float) -> tuple[int, str]:
    with tempfile.TemporaryDirectory(prefix="fuzz-self-") as d:
        wrapper = Path(d) / f"fuzz-{name}"
        wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{Path(__file__).resolve()}" --child {name} -- "$@"\n')
        wrapper.chmod(0o755)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "src")]),
               "CLAPAS_FUZZ_SELF": str(wrapper)}
        return _run([str(wrapper), *args], env, timeout)


def _run(cmd: list[str], env: dict[str, str], timeout: float) -> tuple[int, str]:
    """Exit code and the whole output (libFuzzer writes to stderr, atheris's exception report to stdout)."""
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout,
                           env=env, errors="replace")
    except subprocess.TimeoutExpired as e:
        out = e.stdout or ""
        return -1, out if isinstance(out, str) else out.decode(errors="replace")
    return p.returncode, p.stdout


def _executed(log: str) -> int:
    m = re.findall(r"stat::number_of_executed_units:\s*(\d+)", log)
    if m:
        return int(m[-1])
    runs = re.findall(r"^#(\d+)\s", log, re.M)
    return int(runs[-1]) if runs else 0


def run_atheris(name: str, seconds: float, max_len: int) -> dict:
    folder = CORPUS / name
    folder.mkdir(parents=True, exist_ok=True)
    before = {p.name for p in folder.iterdir()}
    examples, crashes = 0, []
    deadline = time.monotonic() + seconds
    with tempfile.TemporaryDirectory(prefix=f"fuzz-{name}-") as tmp:
        new, art = Path(tmp) / "new", Path(tmp) / "artifacts"
        new.mkdir()
        art.mkdir()
        while (left := deadline - time.monotonic()) > 1:
            args = [f"-max_total_time={max(1, int(left))}", f"-max_len={max_len}", "-timeout=10",
                    "-rss_limit_mb=2048", "-print_final_stats=1", f"-artifact_prefix={art}/", str(new), str(folder)]
            code, log = _libfuzzer(name, args, left + 60)
            examples += _executed(log)
            found = sorted(p for p in art.iterdir() if p.name.startswith(("crash-", "timeout-", "oom-")))
            for p in found:
                data = p.read_bytes()
                keep = folder / _name(data, p.name.split("-")[0])
                if not keep.exists():
                    keep.write_bytes(data)
                    crashes.append({"file": keep.name, "error": _error(log)})
                p.unlink()
            if code == 0 or not found:
                break  # the budget is spent (or libFuzzer stopped for a reason of its own)
        # keep only what adds coverage to the corpus: libFuzzer's merge of the new inputs into it
        merged = 0
        if any(new.iterdir()):
            _, log = _libfuzzer(name, ["-merge=1", f"-max_len={max_len}", str(folder), str(new)], 300)
            m = re.search(r"MERGE-OUTER: (\d+) new files", log)
            merged = int(m.group(1)) if m else 0
    after = {p.name for p in folder.iterdir()}
    return {"examples": examples, "failures": len(crashes), "crashes": crashes,
            "new_corpus": len(after - before) - len(crashes), "corpus": len(after), "merged": merged}


def _error(log: str) -> str:
    """The exception libFuzzer's Python layer printed for a crash, in one line."""
    m = re.search(r"=== Uncaught Python exception: ===\n(.*?)\n", log)
    return m.group(1).strip() if m else (log.strip().splitlines() or ["?"])[-1][:200]


# --- hypothesis: the test suite's strategies, for longer -----------------------------------------------------------
def run_hypothesis(name: str, seconds: float) -> dict:
    from hypothesis import HealthCheck, given, settings

    from tests.fuzz.strategies import strategies
    from tests.fuzz.targets import TARGETS

    strategy = strategies()[name]
    target = TARGETS[name]
    count = 0
    failing: list[bytes] = []

    def probe(data: bytes) -> None:
        nonlocal count
        count += 1
        try:
            target.run(data)
        except Exception:
            failing.append(data)
            raise

    deadline = time.monotonic() + seconds
    crashes = []
    while time.monotonic() < deadline:
        test = settings(max_examples=200, deadline=None, database=None, suppress_health_check=list(HealthCheck))(
            given(strategy)(probe))
        try:
            test()
        except Exception as e:
            data = failing[-1]  # the last failing call is the shrunk example
            keep = CORPUS / name / _name(data, "crash")
            if not keep.exists():
                keep.parent.mkdir(parents=True, exist_ok=True)
                keep.write_bytes(data)
                crashes.append({"file": keep.name, "error": f"{type(e).__name__}: {e}"[:200]})
            break
    return {"examples": count, "failures": len(crashes), "crashes": crashes, "new_corpus": 0,
            "corpus": len(list((CORPUS / name).glob("*")))}


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        _child(sys.argv[2], sys.argv[4:])
        return
    from tests.fuzz.targets import TARGETS

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=120.0, help="budget for all the targets together")
    ap.add_argument("--targets", default="", help="comma-separated target names (default: all)")
    ap.add_argument("--engine", choices=["auto", "atheris", "hypothesis"], default="auto")
    ap.add_argument("--max-len", type=int, default=4096, help="largest input kept in a corpus (bytes)")
    ap.add_argument("--seed-corpus", action="store_true", help="write the seeds into the corpora and stop")
    args = ap.parse_args()
    names = [n for n in args.targets.split(",") if n] or sorted(TARGETS)
    unknown = [n for n in names if n not in TARGETS]
    if unknown:
        ap.error(f"unknown targets {unknown}; known: {', '.join(sorted(TARGETS))}")
    if args.seed_corpus:
        print(json.dumps({"seeded": seed_corpus(names)}))
        return
    engine = args.engine
    if engine == "auto":
        engine = "atheris" if _has_atheris() else "hypothesis"
    per_target = max(args.seconds / len(names), 2.0)
    started = time.monotonic()
    results = {}
    for name in names:
        t0 = time.monotonic()
        r = run_atheris(name, per_target, args.max_len) if engine == "atheris" else run_hypothesis(name, per_target)
        r["seconds"] = round(time.monotonic() - t0, 1)
        results[name] = r
    print(json.dumps({
        "engine": engine, "coverage_guided": engine == "atheris", "budget_s": args.seconds,
        "seconds": round(time.monotonic() - started, 1), "targets": results,
        "examples": sum(r["examples"] for r in results.values()),
        "failures": sum(r["failures"] for r in results.values()),
        "new_corpus": sum(r["new_corpus"] for r in results.values()),
    }, indent=2))


def _has_atheris() -> bool:
    try:
        import atheris  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    main()
