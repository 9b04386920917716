"""`clapas codecs test PATH [--json]`: run every example of every codec of a device-repository folder."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from clapas.codecs.engine import DEFAULT_MEMORY_LIMIT_MB, DEFAULT_STACK_LIMIT_KB, DEFAULT_TIME_LIMIT_MS, Limits
from clapas.codecs.runner import CLASSES, LOAD, check_repository, stderr_progress

# Failures listed in the human-readable output before "… and N more" (--json always lists them all).
MAX_LISTED_FAILURES = 200


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("codecs", help="vendor JavaScript codecs: check them against their published examples")
    csub = p.add_subparsers(dest="codecs_command", metavar="ACTION", required=True)
    t = csub.add_parser("test", help="run every example of every codec in a device-repository folder",
                        description="Run every example of every codec YAML (vendor/<maker>/…) under PATH the way "
                        "The Things Stack's device-repository check runs and compares them, and print pass/fail per "
                        "codec and the figures per class of example (uplink decode, normalize, downlink encode, "
                        "downlink decode). Exit status 1 when an example fails.")
    t.add_argument("path", metavar="PATH", help="a folder laid out like The Things Stack device repository")
    t.add_argument("--json", action="store_true",
                   help="print one JSON object (totals, classes, failures, skipped_examples, per_codec)")
    t.add_argument("--time-limit-ms", type=float, default=DEFAULT_TIME_LIMIT_MS, help="CPU time per codec call")
    t.add_argument("--memory-limit-mb", type=int, default=DEFAULT_MEMORY_LIMIT_MB, help="memory per codec")
    t.add_argument("--stack-limit-kb", type=int, default=DEFAULT_STACK_LIMIT_KB, help="JS stack per codec")
    t.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")
    t.set_defaults(func=run_test)


def _list(title: str, outcomes: list[dict[str, str]]) -> None:
    """Print up to MAX_LISTED_FAILURES example outcomes under a title (nothing when there are none)."""
    if not outcomes:
        return
    print(f"\n{title}")
    for f in outcomes[:MAX_LISTED_FAILURES]:
        print(f"  {f['codec']} — {f['class']} — {f['example']}: {f['reason']}")
    if len(outcomes) > MAX_LISTED_FAILURES:
        print(f"  … and {len(outcomes) - MAX_LISTED_FAILURES} more (--json lists them all)")


def run_test(args: argparse.Namespace) -> int:
    root = Path(args.path)
    if not root.is_dir():
        print(f"clapas codecs test: not a folder: {root}", file=sys.stderr)
        return 2
    limits = Limits(args.time_limit_ms, args.memory_limit_mb, args.stack_limit_kb)
    report = check_repository(root, limits, progress=None if args.quiet else stderr_progress())
    result = report.as_dict()
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        for c in report.codecs:
            status = "PASS" if c.passed == c.examples else "FAIL"
            notes = [f"{c.skipped} skipped"] if c.skipped else []
            if not c.referenced:
                notes.append("no device profile uses it")
            print(f"{status} {c.codec}: {c.passed}/{c.examples}" + (f" ({', '.join(notes)})" if notes else ""))
        _list("failures:", result["failures"])
        _list("skipped (The Things Stack's check does not run them):", result["skipped_examples"])
        print(f"\n{'class':<16} {'examples':>8} {'passed':>7} {'failed':>7} {'skipped':>8}")
        labels = {**CLASSES, LOAD: "codec load"}
        for kind, fig in result["classes"].items():
            print(f"{labels[kind]:<16} {fig['examples']:>8} {fig['passed']:>7} {fig['failed']:>7} {fig['skipped']:>8}")
        rate = 100.0 * result["passed"] / result["examples"] if result["examples"] else 100.0
        print(f"\n{result['codecs']} codecs ({result['unreferenced_codecs']} used by no device profile), "
              f"{result['examples']} examples: {result['passed']} passed, {result['failed']} failed, "
              f"{result['skipped']} skipped ({rate:.1f} % pass)")
    return 1 if result["failed"] else 0
