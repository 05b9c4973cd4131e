#!/usr/bin/env python3
"""Turns the raw results of benches/run into markdown (stdlib only).

    python3 benches/report.py WORKDIR

WORKDIR (made by benches/run) holds, when their step ran:
- criterion-<n>/: one admission run each (criterion's estimates.json files);
- end_to_end.md, memory.md: the Rust harnesses' own markdown, included as is;
- go-<mode>.txt: `go test -bench` output of interleaved rounds (mode: pinned, unpinned);
- python-<mode>.json: bindings/python/bench/timing.py --json;
- meta.json: how the run was made (pinning, rounds, the command).
"""

from __future__ import annotations

import json
import os
import platform
import re
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple


def quartiles(values: Sequence[float]) -> Tuple[float, float, float]:
    if len(values) == 1:
        return values[0], values[0], values[0]
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q2, q3


def spread(values: Sequence[float], digits: int = 2) -> str:
    """"median (min – max)" of a few runs."""
    m = statistics.median(values)
    return f"{m:.{digits}f} ({min(values):.{digits}f} – {max(values):.{digits}f})"


def version(command: List[str]) -> str:
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=30)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.SubprocessError):
        return "not found"


def machine(meta: Dict[str, str]) -> str:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    models = re.findall(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
    mhz = re.findall(r"^cpu MHz\s*:\s*(.+)$", cpuinfo, re.M)
    flags = re.search(r"^flags\s*:\s*(.+)$", cpuinfo, re.M)
    virtual = flags is not None and "hypervisor" in flags.group(1).split()
    meminfo = Path("/proc/meminfo").read_text()
    mem_kib = int(re.search(r"^MemTotal:\s*(\d+)", meminfo, re.M).group(1))
    source = Path("/sys/devices/system/clocksource/clocksource0/current_clocksource")
    clock = f", clocksource {source.read_text().strip()}" if source.exists() else ""
    rows = [
        ("CPU", f"{models[0] if models else platform.processor()}"
                f"{f' at {float(mhz[0]):.0f} MHz' if mhz else ''}"
                f"{' (virtual machine)' if virtual else ''}"),
        ("Cores", f"{os.cpu_count()} logical CPUs"),
        ("Memory", f"{mem_kib / 1024 / 1024:.1f} GiB"),
        ("Kernel", f"{platform.system()} {platform.release()}"
                   f"{clock}"),
        ("Load average (1, 5, 15 min)", f"{meta.get('load_start', '?')} at the start, "
                                        f"{meta.get('load_end', '?')} at the end"),
        ("Rust", version(["rustc", "--version"])),
        ("Go", version(["go", "version"])),
        ("Python", f"{platform.python_implementation()} {platform.python_version()}"),
        ("Commit", version(["git", "rev-parse", "--short", "HEAD"])
                   + (" (with uncommitted changes)"
                      if version(["git", "status", "--porcelain"]) not in ("", "not found")
                      else "")),
    ]
    lines = ["| | |", "| --- | --- |"] + [f"| {k} | {v} |" for k, v in rows]
    return "\n".join(lines)


# Admission (criterion) ------------------------------------------------------------------------

ADMISSION_ROWS = [
    ("admission_one_key/1_thread/memory", "one key, 1 thread, in process"),
    ("admission_one_key/1_thread/shm", "one key, 1 thread, shared memory"),
    ("admission_one_key/2_threads/memory", "one key, 2 threads, in process"),
    ("admission_one_key/2_threads/shm", "one key, 2 threads, shared memory"),
    ("admission_keys_99pct_full/memory/10", "10 keys, 99% full, in process"),
    ("admission_keys_99pct_full/memory/1000", "1,000 keys, 99% full, in process"),
    ("admission_keys_99pct_full/memory/10000", "10,000 keys, 99% full, in process"),
    ("admission_keys_99pct_full/shm/10", "10 keys, 99% full, shared memory"),
    ("admission_keys_99pct_full/shm/1000", "1,000 keys, 99% full, shared memory"),
    ("admission_keys_99pct_full/shm/10000", "10,000 keys, 99% full, shared memory"),
    ("admission_governor_check_1_thread", "governor check, 1 thread"),
    ("admission_governor_check_2_threads", "governor check, 2 threads"),
]

ADMISSION_RATIOS = [
    ("shared memory / in process, 1 thread", "admission_one_key/1_thread/shm",
     "admission_one_key/1_thread/memory", "≈ 2 (~100 ns vs ~50 ns) at most"),
    ("shared memory / in process, 2 threads", "admission_one_key/2_threads/shm",
     "admission_one_key/2_threads/memory", ""),
    ("10,000 keys / 10 keys, in process", "admission_keys_99pct_full/memory/10000",
     "admission_keys_99pct_full/memory/10", "≤ 2"),
    ("10,000 keys / 10 keys, shared memory", "admission_keys_99pct_full/shm/10000",
     "admission_keys_99pct_full/shm/10", "≤ 2"),
    ("rotator (in process) / governor, 1 thread", "admission_one_key/1_thread/memory",
     "admission_governor_check_1_thread", ""),
    ("rotator (in process) / governor, 2 threads", "admission_one_key/2_threads/memory",
     "admission_governor_check_2_threads", ""),
]


def criterion_medians(home: Path) -> Dict[str, float]:
    """Benchmark id -> criterion's median estimate (ns) of one run."""
    out = {}
    for f in home.rglob("new/estimates.json"):
        bench = str(f.parent.parent.relative_to(home))
        out[bench] = json.loads(f.read_text())["median"]["point_estimate"]
    return out


def admission(work: Path) -> Optional[str]:
    runs = [criterion_medians(d) for d in sorted(work.glob("criterion-*")) if d.is_dir()]
    runs = [r for r in runs if r]
    if not runs:
        return None
    n = len(runs)
    lines = [
        "## Admission alone (criterion)",
        "",
        f"One `Pool::try_lease` + `Lease::complete` (selection and admission, no HTTP), {n} "
        "runs of the criterion suite; per run criterion's median time per admission; shown: "
        "the median of the runs (lowest – highest run). 2 threads: wall time per admission with "
        "both threads admitting on the same key (each thread's own call takes about twice "
        "that). 99% full: every key but one in a hundred (one in ten at 10 keys) is full.",
        "",
        "| benchmark | ns per admission |",
        "| --- | ---: |",
    ]
    for bench, label in ADMISSION_ROWS:
        values = [r[bench] for r in runs if bench in r]
        if values:
            lines.append(f"| {label} | {spread(values, 1)} |")
    lines += [
        "",
        "Ratios, each taken within one run (median of runs, lowest – highest):",
        "",
        "| ratio | value | target |",
        "| --- | ---: | --- |",
    ]
    for label, a, b, target in ADMISSION_RATIOS:
        values = [r[a] / r[b] for r in runs if a in r and b in r]
        if values:
            lines.append(f"| {label} | {spread(values)} | {target} |")
    return "\n".join(lines)


# Go ------------------------------------------------------------------------------------------

GO_LINE = re.compile(
    r"^(Benchmark\w+?)(?:-\d+)?\s+(\d+)\s+([\d.]+) ns/op"
    r"(?:\s+(\d+) B/op\s+(\d+) allocs/op)?"
)

GO_PAIRS = [
    ("1 goroutine", "BenchmarkGenerateContent", "BenchmarkPlainHTTP"),
    ("8 goroutines", "BenchmarkGenerateContentParallel", "BenchmarkPlainHTTPParallel"),
]


MODES = {
    "pinned": "pinned (the emulator on the last CPU, the Go or Python process on the others)",
    "unpinned": "not pinned (the client and the emulator share every CPU)",
}


def go(work: Path, mode: str) -> Optional[str]:
    path = work / f"go-{mode}.txt"
    if not path.exists():
        return None
    results: Dict[str, List[Tuple[float, int, int]]] = {}
    for line in path.read_text().splitlines():
        m = GO_LINE.match(line)
        if m:
            name = m.group(1)
            results.setdefault(name, []).append(
                (float(m.group(3)), int(m.group(4) or 0), int(m.group(5) or 0))
            )
    if not results:
        return None
    meta = json.loads((work / "meta.json").read_text()) if (work / "meta.json").exists() else {}
    lines = [
        f"## Go binding, {MODES[mode]}",
        "",
        f"`go test -bench` in {meta.get('go_rounds', '?')} interleaved rounds (one benchmark per "
        "process, the order rotating every round; default `-benchtime` of 1 s). "
        "`GenerateContent` encodes the request struct, calls `gr_generate` and decodes the "
        "answer into a `GeminiResponse`; `PlainHTTP` does the same encoding and decoding around "
        "a net/http POST; `…Parallel`: the same from 8 goroutines sharing one client. "
        "`GenerateContentJSON` passes JSON bytes in and gets JSON bytes back (no Go-side JSON "
        "at all). Ratio: GenerateContent's ns/op over PlainHTTP's within a round; median "
        "[25th – 75th percentile] over rounds.",
        "",
        "| benchmark | ns/op (median, min – max) | B/op | allocs/op |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, values in results.items():
        ns = [v[0] for v in values]
        lines.append(
            f"| {name} | {statistics.median(ns):,.0f} ({min(ns):,.0f} – {max(ns):,.0f}) "
            f"| {values[0][1]} | {values[0][2]} |"
            if ns[0] >= 1000
            else f"| {name} | {statistics.median(ns):.1f} ({min(ns):.1f} – {max(ns):.1f}) "
            f"| {values[0][1]} | {values[0][2]} |"
        )
    lines += ["", "| comparison | GenerateContent / PlainHTTP | rounds |", "| --- | ---: | ---: |"]
    for label, a, b in GO_PAIRS:
        if a in results and b in results:
            ratios = [x[0] / y[0] for x, y in zip(results[a], results[b])]
            q1, q2, q3 = quartiles(ratios)
            lines.append(f"| {label} | {q2:.3f} [{q1:.3f} – {q3:.3f}] | {len(ratios)} |")
    return "\n".join(lines)


# Python --------------------------------------------------------------------------------------


def ratio_text(s: Dict[str, float]) -> str:
    return f"{s['ratio']:.3f} [{s['ratio_q1']:.3f} – {s['ratio_q3']:.3f}]"


def python(work: Path, mode: str) -> Optional[str]:
    path = work / f"python-{mode}.json"
    if not path.exists():
        return None
    r = json.loads(path.read_text())
    lines = [
        f"## Python binding, {MODES[mode]}",
        "",
        f"bindings/python/bench/timing.py: Python {r['python']}, requests {r['requests']}"
        f"{', httpx ' + r['httpx'] if r['httpx'] else ''}; {r['rounds']} interleaved rounds "
        f"of {r['calls']} calls (8 threads: {r['threaded_calls']} calls), the order rotating "
        "every round. Ratio: gemini_rotator's time / the row's, within a round; median "
        "[25th – 75th percentile] over rounds. Every variant parses the JSON answer.",
        "",
        "| one call, 1 thread | µs/call | gemini_rotator / this |",
        "| --- | ---: | ---: |",
    ]
    for name, s in r["one_thread"].items():
        lines.append(
            f"| {name} | {s['us']:.1f} | {ratio_text(s)} |"
        )
    lines += ["", "| ctypes crossing alone | µs/call |", "| --- | ---: |"]
    for name, us in r["crossing_us"].items():
        lines.append(f"| {name} | {us:.2f} |")
    lines += [
        "",
        f"| {r['threads']} threads | wall µs/call | gemini_rotator / this |",
        "| --- | ---: | ---: |",
    ]
    for name, s in r["eight_threads"].items():
        lines.append(
            f"| {name} | {s['us']:.1f} | {ratio_text(s)} |"
        )
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    work = Path(sys.argv[1])
    meta = json.loads((work / "meta.json").read_text()) if (work / "meta.json").exists() else {}
    parts = [
        "# gemini-rotator benchmarks",
        "",
        f"Command: `{meta.get('command', 'benches/run')}` "
        f"(started {meta.get('started', '?')}, took {meta.get('seconds', '?')} s). "
        f"{meta.get('pinning', '')} {meta.get('others', '')}",
        "",
        "## Machine",
        "",
        machine(meta),
    ]
    for section in (
        admission(work),
        (work / "end_to_end.md").read_text().strip() if (work / "end_to_end.md").exists() else None,
        go(work, "pinned"),
        go(work, "unpinned"),
        python(work, "pinned"),
        python(work, "unpinned"),
        (work / "memory.md").read_text().strip() if (work / "memory.md").exists() else None,
    ):
        if section:
            parts += ["", section]
    print("\n".join(parts))


if __name__ == "__main__":
    main()
