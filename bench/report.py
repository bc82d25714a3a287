#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Turn the console log of a benchmark run (bench/guest-job.sh) into a report.

    bench/report.py --log bench.log --out bench/results [--load-before TEXT] ...

Writes OUT/latest.md (tables, ratios, targets), OUT/latest.csv (one value per
row) and OUT/latency.png (the latency distributions; needs matplotlib).
"""
import argparse
import csv
import datetime
import errno
import math
import os
import re
import statistics
import sys
from collections import defaultdict
from pathlib import Path

PATHS = ["keyagentd", "keyagentd-sig", "agent", "channel", "request-key", "floor", "chan-floor"]
AGENTS = ["keyagentd", "keyagentd-sig", "agent", "channel"]
LABEL = {
    "keyagentd": "keyagentd (built-in handler, channel)",
    "keyagentd-sig": "keyagentd --delivery signal",
    "agent": "minimal C agent",
    "channel": "minimal channel agent (/dev/keyagent)",
    "request-key": "/sbin/request-key",
    "floor": "floor (signal round trip + keyctl)",
    "chan-floor": "channel floor (pipe round trip + keyctl)",
}
# The floor each agent's path is held against: its own transport without a construction.
FLOOR = {"keyagentd": "chan-floor", "keyagentd-sig": "floor", "agent": "floor",
         "channel": "chan-floor"}
FLOORS = set(FLOOR.values())
TARGETS = {
    "rk_over_agent_p50": 20.0,
    "agent_over_floor_p50": 3.0,
    "tput_agent_over_rk": 20.0,
    "overhead": 1.05,
    "memory": 0.01,
    # The channel's targets.
    "channel_over_signal_floor_p50": 0.8,
    "rk_over_keyagentd_p50": 100.0,
    "tput_x8_over_rk": 300.0,
    "overhead_channel": 1.02,
}


def pct(sorted_values, p):
    """Nearest-rank percentile."""
    if not sorted_values:
        return float("nan")
    i = max(0, min(len(sorted_values) - 1, math.ceil(p / 100.0 * len(sorted_values)) - 1))
    return sorted_values[i]


def fmt_us(us):
    if us != us:
        return "-"
    if us >= 10000:
        return f"{us / 1000:.1f} ms"
    if us >= 1000:
        return f"{us / 1000:.2f} ms"
    return f"{us:.0f} us"


def fmt_x(x, digits=1):
    return "-" if x is None or x != x else f"{x:.{digits}f}x"


def ok(flag):
    return "met" if flag else "**missed**"


class Run:
    """Everything the guest printed."""

    def __init__(self, text):
        self.meta = defaultdict(list)
        self.lat = defaultdict(list)
        self.laterr = {}
        self.tput = defaultdict(list)  # (path, conc) -> [(count, errors, us)]
        self.ovh = defaultdict(list)  # (lookup, state) -> [(round, [ns...])]
        self.keyusers = {}  # stage -> dict for uid 0
        self.keys = defaultdict(list)  # stage -> [/proc/keys lines]
        self.slab = defaultdict(dict)  # stage -> name -> (active, num, size)
        self.meminfo = defaultdict(dict)
        self.memrun = None
        self.stats = {}
        self.trace = defaultdict(list)
        self.profpids = {}
        self.proflat = defaultdict(list)
        self.done = None
        self.quota = []
        for line in self.repair(text.splitlines()):
            if not line.startswith("BENCH-"):
                continue
            tag, _, rest = line.partition(" ")
            f = rest.split()
            if tag == "BENCH-META" and f:
                self.meta[f[0]].append(" ".join(f[1:]))
            elif tag == "BENCH-LAT":
                self.lat[f[0]].extend(float(x) for x in f[1:])
            elif tag == "BENCH-LATERR":
                self.laterr[f[0]] = (int(f[1]), " ".join(f[2:]))
            elif tag == "BENCH-TPUT":
                self.tput[(f[0], int(f[1]))].append((int(f[2]), int(f[3]), float(f[4])))
            elif tag == "BENCH-OVH":
                self.ovh[(f[0], f[1])].append((int(f[2]), [float(x) for x in f[3:]]))
            elif tag == "BENCH-KEYUSERS":
                m = re.match(r"\s*(\d+):\s+(\d+)\s+(\d+)/(\d+)\s+(\d+)/(\d+)\s+(\d+)/(\d+)", rest[len(f[0]):])
                if m and m.group(1) == "0":
                    self.keyusers[f[0]] = dict(
                        usage=int(m.group(2)), nkeys=int(m.group(3)),
                        qnkeys=int(m.group(5)), qnbytes=int(m.group(7)),
                        maxbytes=int(m.group(8)))
            elif tag == "BENCH-KEYS":
                self.keys[f[0]].append(rest[len(f[0]) + 1:])
            elif tag == "BENCH-SLAB":
                self.slab[f[0]][f[1]] = (int(f[2]), int(f[3]), int(f[4]))
            elif tag == "BENCH-MEMINFO":
                self.meminfo[f[0]][f[1]] = int(f[2])
            elif tag == "BENCH-MEMRUN":
                self.memrun = (int(f[0]), int(f[1]), float(f[2]))
            elif tag == "BENCH-STAT":
                self.stats[f[0]] = dict(kv.split("=") for kv in f[1:])
            elif tag == "BENCH-TRACE":
                self.trace[f[0]].append(rest[len(f[0]) + 1:])
            elif tag == "BENCH-PROFPIDS":
                self.profpids[f[0]] = dict(kv.split("=") for kv in f[1:] if "=" in kv)
            elif tag == "BENCH-PROFLAT":
                self.proflat[f[0]].append(float(f[1]))
            elif tag == "BENCH-QUOTA":
                self.quota.append(dict(kv.split("=", 1) for kv in f if "=" in kv) | {"what": f[1]})
            elif tag == "BENCH-DONE":
                self.done = int(f[0])

    @staticmethod
    def repair(lines):
        """Kernel messages go to the same console and can land in the middle of
        a line of the job's output: cut them out and join the halves."""
        kmsg = re.compile(r"\[\s*\d+\.\d+\] ")
        pending = None
        for line in lines:
            if pending is not None:
                if kmsg.match(line):
                    continue
                line, pending = pending + line, None
            if line.startswith("BENCH-"):
                m = kmsg.search(line)
                if m:
                    pending = line[:m.start()]
                    continue
            yield line

    def pending(self, path):
        return any(v.startswith(path) for v in self.meta.get("pending", []))


# ---- function_graph traces ----

TRACE_RE = re.compile(
    r"^\s*(?P<ts>\d+\.\d+)\s*\|\s*(?P<cpu>\d+)\)\s*(?P<proc>\S+)\s*\|\s*"
    r"(?P<dur>[!#*@$+ ]*[\d.]+ us)?\s*\|\s(?P<text>.*)$")


class Trace:
    """A function_graph trace (funcgraph-abstime, -proc, -tail) of one path:
    durations of each call by its call path, per role, and the delay from
    each wakeup of a traced task to it running."""

    def __init__(self, lines, pids):
        roles = {pids.get("requester"): "requester", pids.get("answerer"): "answerer"}
        self.n = 1
        self.calls = defaultdict(lambda: defaultdict(list))  # role -> call path -> [us]
        self.wake = defaultdict(list)  # role -> [us]
        stacks = defaultdict(list)  # pid -> open calls
        woken = {}
        self.roles = roles
        self.pids = {v: k for k, v in roles.items()}
        self.events = []  # (ts, pid, kind, name, depth): enter, exit, switch-in
        for line in lines:
            m = TRACE_RE.match(line)
            if not m:
                continue
            ts = float(m.group("ts"))
            pid = m.group("proc").rsplit("-", 1)[-1]
            role = roles.get(pid, "other")
            text = m.group("text").strip()
            dur = m.group("dur")
            us = float(re.sub(r"[^\d.]", "", dur)) if dur else None
            if text.startswith("/*"):
                ev = re.search(r"sched_wakeup: comm=.* pid=(\d+) prio", text)
                if ev:
                    woken.setdefault(ev.group(1), ts)
                    self.events.append((ts, ev.group(1), "wake", "", 0))
                ev = re.search(r"sched_switch: .* ==> next_comm=.* next_pid=(\d+) ", text)
                if ev:
                    self.events.append((ts, ev.group(1), "switch-in", "", 0))
                if ev and ev.group(1) in woken:
                    self.wake[roles.get(ev.group(1), "other")].append((ts - woken.pop(ev.group(1))) * 1e6)
                continue
            stack = stacks[pid]
            if text.endswith("{"):
                stack.append(text[:-1].strip().rstrip("()"))
                self.events.append((ts, pid, "enter", stack[-1], len(stack)))
                continue
            if us is None:
                continue
            if text.startswith("}"):
                tail = re.search(r"/\* (\S+) \*/", text)
                name = tail.group(1) if tail else (stack[-1] if stack else "?")
                if stack and stack[-1] == name:
                    stack.pop()
                node = tuple(stack) + (name,)
                self.events.append((ts, pid, "exit", name, len(node)))
            else:
                node = tuple(stack) + (text.rstrip(";").rstrip("()"),)
                self.events.append((ts, pid, "enter", node[-1], len(node)))
                self.events.append((ts + us / 1e6, pid, "exit", node[-1], len(node)))
            self.calls[role][node].append(us)
        self.events.sort()

    def timelines(self, floor):
        """Per traced construction, when its steps happened, in us after the
        requester entered request_key() (floor: rt_sigqueueinfo()):

        woken     the answerer is woken (the signal is queued)
        running   the answerer runs
        keyctl    it enters its first keyctl()
        answered  keyctl_instantiate returns (floor: its signal back is sent)
        back      the requester runs again
        returned  request_key() returns (floor: its read() of the signalfd)
        read      the key has been read back
        """
        r, a = self.pids.get("requester"), self.pids.get("answerer")
        ev = self.events
        out = []

        def find(start, pid, kind, name=None, depth=None, before=None):
            if start is None:
                return None
            for i in range(start, len(ev)):
                t, p, k, n, d = ev[i]
                if before is not None and t > before:
                    return None
                if p == pid and k == kind and (name is None or n == name) and (depth is None or d == depth):
                    return i
            return None

        first = "__x64_sys_rt_sigqueueinfo" if floor else "__x64_sys_request_key"
        i = 0
        while True:
            ia = find(i, r, "enter", first, 1)
            if ia is None:
                break
            i = ia + 1
            if floor:
                ig = find(find(ia, r, "exit", first, 1), r, "exit", "__x64_sys_read", 1)
            else:
                ig = find(ia, r, "exit", first, 1)
            if ig is None:
                continue
            tg = ev[ig][0]
            iw = find(ia, a, "wake", before=tg)
            ic = find(iw, a, "switch-in", before=tg)
            idd = find(ic, a, "enter", "__x64_sys_keyctl", 1, before=tg)
            ie = find(idd, a, "exit", "__x64_sys_rt_sigqueueinfo" if floor else "keyctl_instantiate_key")
            iw2 = find(idd, r, "wake", before=tg)
            iff = find(iw2, r, "switch-in", before=tg)
            if iw2 is None or iff is None:
                # the requester had not gone to sleep yet: nothing to wake
                iw2 = iff = ie
            ih = find(ig, r, "exit", "__x64_sys_keyctl", 1)
            if None in (iw, ic, idd, ie, ih):
                continue
            t0 = ev[ia][0]
            tc, te = ev[ic][0], ev[ie][0]
            # the answerer's time in system calls between running and answering
            sys_us, opened = 0.0, None
            for t, p_, k, n, d in ev[:ie + 1]:
                if p_ != a or d != 1 or not n.startswith("__x64_sys_"):
                    continue
                if k == "enter":
                    opened = t
                elif opened is not None:
                    lo, hi = max(opened, tc), min(t, te)
                    sys_us += max(0.0, hi - lo) * 1e6
                    opened = None
            if opened is not None:
                sys_us += max(0.0, te - max(opened, tc)) * 1e6
            us = {k: (ev[j][0] - t0) * 1e6 for k, j in
                  (("woken", iw), ("running", ic), ("keyctl", idd), ("answered", ie),
                   ("requester-woken", iw2), ("back", iff), ("returned", ig), ("read", ih))}
            us.update(start=t0, answer_sys=sys_us)
            out.append(us)
            i = ih
        return out

    def syscalls(self, role):
        """name -> [us] of the top-level system calls of @role."""
        return {node[0][len("__x64_sys_"):]: v for node, v in self.calls[role].items()
                if len(node) == 1 and node[0].startswith("__x64_sys_")}

    def syscalls_in(self, role, spans):
        """name -> [us] of the top-level system calls of @role that end inside one
        of @spans (absolute start, end); keyctl() is named by its operation."""
        pid = self.pids.get(role)
        out = defaultdict(list)
        opened, op = {}, None
        for ts, p, kind, name, depth in self.events:
            if p != pid:
                continue
            if depth == 2 and kind == "enter" and name.startswith("keyctl_") and op is None:
                op = name[len("keyctl_"):]
            if depth != 1 or not name.startswith("__x64_sys_"):
                continue
            if kind == "enter":
                opened[name] = ts
                op = None
            elif kind == "exit":
                start = opened.pop(name, None)
                if start is not None and any(lo <= ts <= hi for lo, hi in spans):
                    call = name[len("__x64_sys_"):]
                    if call == "keyctl" and op:
                        call = "keyctl " + op.replace("_key", "")
                    out[call].append((ts - start) * 1e6)
        return out

    def children(self, parent):
        """call path -> [us] of the calls directly under @parent (a tuple), any role."""
        out = defaultdict(list)
        for role in self.calls.values():
            for node, v in role.items():
                if len(node) == len(parent) + 1 and node[:len(parent)] == parent:
                    out[node[-1]].extend(v)
        return out

    def all(self, name):
        """[us] of every call of @name, wherever it was called from."""
        return [x for role in self.calls.values() for node, v in role.items()
                if node[-1] == name for x in v]


# ---- the report ----

def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--log", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--load-before", default="")
    ap.add_argument("--load-after", default="")
    ap.add_argument("--hostload", default="", help="lines: epoch load1 load5 load15 qemu-processes")
    ap.add_argument("--host", default="")
    ap.add_argument("--qemu", default="")
    ap.add_argument("--kernel", default="")
    ap.add_argument("--keyagentd", default="built")
    ap.add_argument("--source", default="", help="which module sources were measured")
    args = ap.parse_args()

    run = Run(Path(args.log).read_text(errors="replace"))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []  # csv rows

    def row(section, metric, path, param, value, unit):
        rows.append([section, metric, path, param,
                     "" if value is None or value != value else (round(value, 3) if isinstance(value, float) else value),
                     unit])

    md = []
    w = md.append
    # when the run ended: the console log's last write
    stamp = datetime.datetime.fromtimestamp(Path(args.log).stat().st_mtime,
                                            datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    w("# keyagent benchmarks: keyagent against /sbin/request-key")
    w("")
    w(f"Measured {stamp} in one boot of the release (non-debug) kernel "
      f"`{' '.join(run.meta.get('kernel', ['?']))}` under **QEMU TCG** (software emulation, "
      f"{' '.join(run.meta.get('guest-cpus', ['?']))} vCPUs, 2 GiB), "
      f"on a host with {args.host or '?'}, shared with other work. "
      "Absolute times under TCG are many times those of real hardware; only the "
      "ratios between paths measured in the same run travel between machines.")
    w("")
    w(f"- host load before: `{args.load_before.strip()}`")
    w(f"- host load after: `{args.load_after.strip()}`")
    if args.hostload and Path(args.hostload).exists():
        samples = [l.split() for l in Path(args.hostload).read_text().splitlines() if len(l.split()) >= 5]
        if samples:
            loads = [float(x[1]) for x in samples]
            qemus = [int(x[4]) for x in samples]
            w(f"- host load average (1 min) during the run, sampled every 5 s: "
              f"{min(loads):.2f} to {max(loads):.2f} (median {statistics.median(loads):.2f}); "
              f"QEMU processes on the host: {min(qemus)} to {max(qemus)} (this run's included)")
            row("host", "load1-min", "", "", min(loads), "")
            row("host", "load1-max", "", "", max(loads), "")
            row("host", "qemu-processes-max", "", "", max(qemus), "")
    if args.source:
        w(f"- module measured: {args.source}")
    if args.qemu:
        w(f"- {args.qemu}")
    w("- generated by `make bench` (`scripts/bench.sh`); raw console log: "
      "`$KEYAGENT_BUILD/bench/bench.log`")
    w("")
    header_end = len(md)

    # -- latency
    lat = {}
    for p in PATHS:
        v = sorted(run.lat.get(p, []))
        if v:
            lat[p] = dict(n=len(v), p50=pct(v, 50), p90=pct(v, 90), p99=pct(v, 99),
                          mean=statistics.fmean(v), min=v[0], max=v[-1])
    summary = []  # (target, measured, status)

    w("## 1. Upcall latency")
    w("")
    w("`request_key()` of a fresh `user` key description until the key has been read "
      "back, one request per path per round, the paths interleaved round by round "
      f"({', '.join(run.meta.get('latency', ['?']))}; a pause of gap_ms after each request).")
    w("")
    w("| path | n | p50 | p90 | p99 | mean | errors |")
    w("|---|---:|---:|---:|---:|---:|---:|")
    for p in PATHS:
        if p in lat:
            s = lat[p]
            err = run.laterr.get(p, (0, "-"))
            w(f"| {LABEL[p]} | {s['n']} | {fmt_us(s['p50'])} | {fmt_us(s['p90'])} | "
              f"{fmt_us(s['p99'])} | {fmt_us(s['mean'])} | {err[0]} |")
            for k in ("p50", "p90", "p99", "mean"):
                row("latency", k, p, "", s[k], "us")
            row("latency", "samples", p, "", s["n"], "count")
            row("latency", "errors", p, "", err[0], "count")
        elif run.pending(p) or (p == "keyagentd" and args.keyagentd != "built"):
            w(f"| {LABEL[p]} | pending | | | | | |")
            row("latency", "p50", p, "", None, "pending")
    w("")
    ratios = []
    for a in AGENTS:
        if a in lat and "request-key" in lat:
            for k in ("p50", "p90", "p99"):
                r = lat["request-key"][k] / lat[a][k]
                row("latency-ratio", f"request-key/{a}", k, "", r, "x")
            r = lat["request-key"]["p50"] / lat[a]["p50"]
            ratios.append(f"/sbin/request-key / {a}: {fmt_x(r)} (p50), "
                          f"{fmt_x(lat['request-key']['p90'] / lat[a]['p90'])} (p90), "
                          f"{fmt_x(lat['request-key']['p99'] / lat[a]['p99'])} (p99)")
            summary.append((f"{a}: median latency >= 20x lower than /sbin/request-key",
                            fmt_x(r), ok(r >= TARGETS["rk_over_agent_p50"])))
        f = FLOOR[a]
        if a in lat and f in lat:
            for k in ("p50", "p90", "p99"):
                row("latency-ratio", f"{a}/{f}", k, "", lat[a][k] / lat[f][k], "x")
            r = lat[a]["p50"] / lat[f]["p50"]
            ratios.append(f"{a} / {f}: {fmt_x(r, 2)} (p50), "
                          f"{fmt_x(lat[a]['p90'] / lat[f]['p90'], 2)} (p90), "
                          f"{fmt_x(lat[a]['p99'] / lat[f]['p99'], 2)} (p99)")
            summary.append((f"{a}: median latency within 3x of the "
                            f"{'floor' if f == 'floor' else 'channel floor'}",
                            fmt_x(r, 2), ok(r <= TARGETS["agent_over_floor_p50"])))
    if "channel" in lat and "floor" in lat:
        r = lat["channel"]["p50"] / lat["floor"]["p50"]
        row("latency-ratio", "channel/floor", "p50", "", r, "x")
        ratios.append(f"channel / floor (the signal floor): {fmt_x(r, 2)} (p50)")
        summary.append(("channel agent: median latency at most 0.8x the signal floor",
                        fmt_x(r, 2), ok(r <= TARGETS["channel_over_signal_floor_p50"])))
    if "keyagentd" in lat and "request-key" in lat:
        r = lat["request-key"]["p50"] / lat["keyagentd"]["p50"]
        summary.append(("keyagentd on the channel: median latency >= 100x lower than "
                        "/sbin/request-key", fmt_x(r), ok(r >= TARGETS["rk_over_keyagentd_p50"])))
    if ratios:
        w("Ratios: " + "; ".join(ratios) + ".")
        w("")
    diag = sorted(p for p in run.lat if "@" in p)
    if diag:
        w("Diagnosis, same boot: the requester and the answering process pinned to one vCPU "
          "(`@same-cpu`), then to different vCPUs (`@cross-cpu`); /sbin/request-key is left "
          "out (its helpers are started by the kernel and cannot be pinned). Under TCG a "
          "wakeup across vCPUs goes through the emulator and the host's scheduler.")
        w("")
        w("| path | n | p50 | p90 | p99 | p50 / its floor (same pinning) |")
        w("|---|---:|---:|---:|---:|---:|")
        for p in sorted(diag, key=lambda x: (x.split("@")[1], PATHS.index(x.split("@")[0]))):
            v = sorted(run.lat[p])
            base, variant = p.split("@")
            fl = sorted(run.lat.get(f"{FLOOR.get(base, 'floor')}@{variant}", []))
            ratio = pct(v, 50) / pct(fl, 50) if fl else float("nan")
            w(f"| {base} @{variant} | {len(v)} | {fmt_us(pct(v, 50))} | {fmt_us(pct(v, 90))} | "
              f"{fmt_us(pct(v, 99))} | {fmt_x(ratio, 2) if base not in FLOORS else '-'} |")
            for k in (50, 90, 99):
                row("latency-diagnosis", f"p{k}", p, "", pct(v, k), "us")
            if base not in FLOORS:
                row("latency-diagnosis", f"{base}/{FLOOR.get(base, 'floor')} p50", p, variant,
                    ratio, "x")
        w("")
    if "request-key" in lat and lat["request-key"]["n"] < 2000:
        w(f"/sbin/request-key: {lat['request-key']['n']} samples (the run was asked for fewer).")
        w("")

    # -- throughput
    w("## 2. Throughput")
    w("")
    meta_t = " ".join(run.meta.get("throughput", ["?"]))
    w("Constructions per second with N requester processes, each requesting fresh keys "
      "and reading them back in a loop for a fixed window; throughput = completed "
      "constructions / (last completion - start). Each cell is the median of the "
      f"repeated runs, with the range ({meta_t}).")
    w("")
    levels = sorted({c for (_, c) in run.tput})
    tp = {}
    for (p, c), runs in run.tput.items():
        rates = sorted(cnt / (us / 1e6) for cnt, _, us in runs if us > 0)
        if rates:
            tp[(p, c)] = dict(med=statistics.median(rates), lo=rates[0], hi=rates[-1],
                              n=len(rates), errors=sum(e for _, e, _ in runs))
            row("throughput", "median", p, f"x{c}", tp[(p, c)]["med"], "constructions/s")
            row("throughput", "min", p, f"x{c}", rates[0], "constructions/s")
            row("throughput", "max", p, f"x{c}", rates[-1], "constructions/s")
    tpaths = [p for p in PATHS if any((p, c) in tp for c in levels)]
    if tpaths:
        head = "| requesters | " + " | ".join(LABEL[p] for p in tpaths) + " | " + \
            " | ".join(f"{a} / request-key" for a in AGENTS if a in tpaths and "request-key" in tpaths) + " |"
        w(head)
        w("|---:|" + "---:|" * (head.count("|") - 2))
        for c in levels:
            cells = []
            for p in tpaths:
                t = tp.get((p, c))
                cells.append("-" if not t else
                             f"{t['med']:.0f}/s ({t['lo']:.0f}-{t['hi']:.0f})" if t["med"] >= 100 else
                             f"{t['med']:.1f}/s ({t['lo']:.1f}-{t['hi']:.1f})")
            for a in AGENTS:
                if a in tpaths and "request-key" in tpaths and (a, c) in tp and ("request-key", c) in tp:
                    r = tp[(a, c)]["med"] / tp[("request-key", c)]["med"]
                    cells.append(fmt_x(r, 0))
                    row("throughput-ratio", f"{a}/request-key", a, f"x{c}", r, "x")
            w(f"| {c} | " + " | ".join(cells) + " |")
        w("")
        for a in AGENTS:
            rs = [tp[(a, c)]["med"] / tp[("request-key", c)]["med"] for c in levels
                  if (a, c) in tp and ("request-key", c) in tp]
            if rs:
                summary.append((f"{a}: throughput >= 20x /sbin/request-key at every level",
                                f"{min(rs):.0f}x (lowest)", ok(min(rs) >= TARGETS["tput_agent_over_rk"])))
        for a in ("channel", "keyagentd"):
            if (a, 8) in tp and ("request-key", 8) in tp:
                r = tp[(a, 8)]["med"] / tp[("request-key", 8)]["med"]
                summary.append((f"{a}: throughput at 8 requesters >= 300x /sbin/request-key",
                                fmt_x(r, 0), ok(r >= TARGETS["tput_x8_over_rk"])))
        errs = {p: sum(t["errors"] for (q, _), t in tp.items() if q == p) for p in tpaths}
        if any(errs.values()):
            w("Failed requests during the throughput runs: " +
              ", ".join(f"{p} {n}" for p, n in errs.items() if n) + ".")
            w("")
    tdiag = sorted({p for (p, _) in tp if "@" in p})
    if tdiag:
        w("Diagnosis: one requester, pinned with its agent to one vCPU (`@same-cpu`) or to "
          "different vCPUs (`@cross-cpu`):")
        w("")
        w("| path | runs | median | range |")
        w("|---|---:|---:|---:|")
        for p in sorted(tdiag, key=lambda x: (x.split("@")[1], x)):
            for c in levels:
                t = tp.get((p, c))
                if t:
                    w(f"| {p.replace('@', ' @')} x{c} | {t['n']} | {t['med']:.0f}/s | {t['lo']:.0f}-{t['hi']:.0f}/s |")
        w("")
    if run.pending("keyagentd") or args.keyagentd != "built":
        w("keyagentd: pending.")
        w("")

    # -- overhead
    w("## 3. Overhead on the no-agent path")
    w("")
    w("`request_key()` of an existing key and of a negative key (no construction: "
      "neither reaches the module's hook), module loaded against unloaded, in the same "
      "boot. Rounds alternate the order (ABBA); each value is the mean time of one "
      f"batch of lookups ({' '.join(run.meta.get('overhead', ['?']))}); the table gives the "
      "median over all batches, and the median of the per-round ratios.")
    w("")
    w("| lookup | unloaded | loaded | loaded / unloaded | per-round ratios (median, range) |")
    w("|---|---:|---:|---:|---:|")
    for lookup in ("existing", "negative"):
        u = [x for _, v in run.ovh.get((lookup, "unloaded"), []) for x in v]
        ld = [x for _, v in run.ovh.get((lookup, "loaded"), []) for x in v]
        if not u or not ld:
            continue
        mu, ml = statistics.median(u), statistics.median(ld)
        per_round = []
        ur = {r: statistics.median(v) for r, v in run.ovh[(lookup, "unloaded")]}
        for r, v in run.ovh[(lookup, "loaded")]:
            if r in ur:
                per_round.append(statistics.median(v) / ur[r])
        pr = sorted(per_round)
        w(f"| {lookup} key | {mu / 1000:.2f} us | {ml / 1000:.2f} us | {ml / mu:.3f} | "
          f"{statistics.median(pr):.3f} ({pr[0]:.3f}-{pr[-1]:.3f}) |")
        row("overhead", "unloaded", lookup, "", mu, "ns")
        row("overhead", "loaded", lookup, "", ml, "ns")
        row("overhead", "loaded/unloaded", lookup, "", ml / mu, "x")
        summary.append((f"no-agent overhead, {lookup} key: at most 2%",
                        f"{(ml / mu - 1) * 100:+.1f}%", ok(ml / mu <= TARGETS["overhead_channel"])))
    w("")

    # -- memory
    w("## 4. Memory")
    w("")
    mm = " ".join(run.meta.get("memory", ["?"]))
    if run.memrun:
        w(f"{run.memrun[0]} constructions through the minimal agent ({mm}; "
          f"{run.memrun[1]} failed, {run.memrun[2] / 1e6:.1f} s), the keys kept in keyrings of "
          "10,000 (a keyring's quota charge is 16 bits wide: one holding more than 16,383 "
          "links would wrap it); then the keyrings are cleared and the key garbage collector "
          "(gc_delay 1 s) left to run. Slab counts are taken after asking every cache to shrink "
          "(`/sys/kernel/slab/*/shrink`).")
    w("")
    stages = [s for s in ("before", "after", "gc") if s in run.keyusers or s in run.slab]

    def slab_bytes(stage):
        return sum(a * size for a, _, size in run.slab[stage].values()) if stage in run.slab else None

    def slab_objs(stage, names):
        return sum(run.slab[stage][n][0] for n in names if n in run.slab.get(stage, {}))

    if stages:
        w("| | before | after 100k | after GC | after GC vs before |")
        w("|---|---:|---:|---:|---:|")
        items = [
            ("keys of uid 0 (`/proc/key-users`)", lambda s: run.keyusers.get(s, {}).get("nkeys")),
            ("key quota bytes of uid 0 (`qnbytes`)", lambda s: run.keyusers.get(s, {}).get("qnbytes")),
            ("live slab objects, KiB (`/proc/slabinfo`)",
             lambda s: None if slab_bytes(s) is None else slab_bytes(s) / 1024),
            ("`key_jar` objects", lambda s: slab_objs(s, ["key_jar"]) if "key_jar" in run.slab.get(s, {}) else None),
            ("Slab, KiB (`/proc/meminfo`)", lambda s: run.meminfo.get(s, {}).get("Slab")),
        ]
        for name, get in items:
            vals = [get(s) for s in ("before", "after", "gc")]
            if all(v is None for v in vals):
                continue
            b, a, g = vals
            delta = "-" if b in (None, 0) or g is None else f"{(g - b) / b * 100:+.2f}%"
            w(f"| {name} | " + " | ".join("-" if v is None else f"{v:,.0f}" for v in vals) + f" | {delta} |")
            for st, v in zip(("before", "after", "gc"), vals):
                row("memory", name.split(" (")[0], st, "", float(v) if v is not None else None, "")
        w("")
        for name, get, label in [
            ("keys", lambda s: run.keyusers.get(s, {}).get("nkeys"), "keys back to baseline"),
            ("slab", lambda s: slab_bytes(s), "live slab bytes at most 1% above baseline"),
            ("meminfo", lambda s: run.meminfo.get(s, {}).get("Slab"), "Slab (meminfo) at most 1% above baseline"),
            ("qnbytes", lambda s: run.keyusers.get(s, {}).get("qnbytes"),
             "key quota bytes (uid 0) at most 1% above baseline"),
        ]:
            b, g = get("before"), get("gc")
            if b is None or g is None or b == 0:
                continue
            d = (g - b) / b
            # Less than before is memory given back (earlier phases' caches), not a leak.
            summary.append((f"memory: {label}", f"{d * 100:+.2f}%", ok(d <= TARGETS["memory"])))
        if "before" in run.keyusers and "gc" in run.keyusers and run.memrun:
            dq = run.keyusers["gc"]["qnbytes"] - run.keyusers["before"]["qnbytes"]
            made = run.memrun[0]
        if "before" in run.keyusers and "gc" in run.keyusers and run.memrun and \
                abs(dq) <= 0.01 * max(1, run.keyusers["before"]["qnbytes"]) and \
                run.keyusers.get("exit", {}).get("qnbytes") == run.keyusers.get("start", {}).get("qnbytes"):
            w(f"**Key quota.** After GC uid 0's key quota charge is back to its value before the "
              f"{made:,} constructions ({dq:+,} bytes), and once the agent and the requesters have "
              "exited, to its value before they started.")
            row("memory", "quota bytes leaked per construction", "agent", "", dq / made, "bytes")
            if "start" in run.keyusers and "exit" in run.keyusers:
                summary.append(("memory: key quota of uid 0 back to its value once the agent has exited",
                                "+0 bytes", ok(True)))
            w("")
        elif "before" in run.keyusers and "gc" in run.keyusers and run.memrun:
            w(f"**Key quota.** After GC, with the agent still running, uid 0 is charged {dq:+,} "
              f"bytes more than before the {made:,} constructions ({dq / made:.2f} bytes per "
              "construction) although it has the same keys. The module links each "
              "construction's authorisation key into the agent's process keyring (4 bytes of "
              "the agent user's key quota per link) and its reaper unlinks it within 100 ms; but "
              "instantiating the key invalidates the authorisation key, and when the key garbage "
              "collector removes that dead link first, `keyring_gc()` does not give the 4 bytes "
              "back. The keyring's `datalen`, and so the charge, only grows while the agent lives.")
            row("memory", "quota bytes leaked per construction", "agent", "", dq / made, "bytes")
            if "start" in run.keyusers and "exit" in run.keyusers:
                dx = run.keyusers["exit"]["qnbytes"] - run.keyusers["start"]["qnbytes"]
                w("")
                w(f"Once the agent and the requesters have exited (their keyrings destroyed), uid 0 "
                  f"is still charged {dx:+,} bytes more than before they started "
                  f"({dx / 65536:.2f} x 65,536): `struct key`'s `quotalen` is 16 bits, so when the "
                  "agent's process keyring has accumulated 64 KiB (16,384 lost links) it wraps, and "
                  "destroying the keyring gives back only the wrapped value. That part of the user's "
                  "quota is lost until reboot.")
                row("memory", "quota bytes lost after the agent exited", "agent", "", dx, "bytes")
                summary.append(("memory: key quota of uid 0 back to its value once the agent has exited",
                                f"{dx:+,} bytes", ok(dx == 0)))
            w("")
    if run.quota:
        w("**An unprivileged agent.** Constructions one at a time with the agent and the "
          "requester running as uid " + run.quota[0].get("uid", "?") + " (default quota: 200 keys, "
          "20,000 bytes; the requester unlinks each key before invalidating it, so only the "
          "agent's side can grow):")
        w("")
        w("| constructions | answered | failed | key quota bytes of the user |")
        w("|---:|---:|---:|---:|")
        for q in run.quota:
            if q["what"].startswith("at="):
                w(f"| {q['what'][3:]} | {q['answered']} | {q['failed']} | {int(q['qnbytes']):,} |")
        done = [q for q in run.quota if q["what"] == "done"]
        if done:
            d = done[-1]
            w("")
            err = d["error"]
            if hasattr(errno, err):
                err = f"`{err}` ({os.strerror(getattr(errno, err))})"
            w(f"{d['answered']} answered, {d['failed']} failed" +
              (f"; first failure at construction {d['first_failure']}: {err}, when the user had "
               f"{d.get('keys_then', '?')} keys and {int(d.get('qnbytes_then', 0)):,} quota bytes."
               if err != "-" else "."))
            w("")
            w("Failures while the byte quota is far from full come from the user's key count "
              "quota (200 keys): each construction leaves its key and its authorisation key alive "
              "until the module's reaper (every 100 ms) and the garbage collector are through with "
              "them.")
            qb = [int(q["qnbytes"]) for q in run.quota if q["what"].startswith("at=")]
            if qb and max(qb) > 15000:
                w(" Once the agent's process keyring holds the whole byte quota (20,000 bytes, "
                  "about 5,000 lost links), every construction through that agent fails: linking "
                  "the next authorisation key is refused with `EDQUOT`.")
            row("quota", "answered", "agent", f"uid {run.quota[0].get('uid')}", int(d["answered"]), "count")
            row("quota", "failed", "agent", f"uid {run.quota[0].get('uid')}", int(d["failed"]), "count")
            total = int(d["answered"]) + int(d["failed"])
            summary.append((f"unprivileged agent: all {total:,} constructions answered (not a stated "
                            "target)", f"{d['failed']} failed",
                            ok(int(d["failed"]) == 0)))
        w("")
    if "no-slabinfo" in run.meta:
        w("No `/proc/slabinfo` in this kernel: it needs `CONFIG_SLUB_DEBUG` (and not `SLUB_TINY`).")
        w("")

    # -- profile
    if run.trace:
        traces = {}
        for tag, lines in run.trace.items():
            t = Trace(lines, run.profpids.get(tag, {}))
            t.n = max(1, len(run.proflat.get(tag, [])))
            traces[tag] = t
        w("## Profile")
        w("")
        w("function_graph traces of a few constructions per path (tracefs, in the same boot), "
          "requester and answering process only, with the scheduler's wakeups. Tracing slows "
          "every traced call down, so read the shares and counts, not the absolute times.")
        w("")
        w("System calls made during one construction (from the requester entering "
          "request_key() to the key read back; depth 3; a blocking read() or poll() "
          "counts its wait):")
        w("")
        w("| path | process | system calls | time in them | wakeup to running (median) | calls: count per construction (median us) |")
        w("|---|---|---:|---:|---:|---|")
        for tag, t in traces.items():
            label, _, p = tag.partition("/")
            if label != "syscalls":
                continue
            spans = [(x["start"], x["start"] + x["read"] / 1e6) for x in t.timelines(p == "floor")]
            n = max(1, len(spans)) if spans else t.n
            for role in ("requester", "answerer"):
                c = t.syscalls_in(role, spans) if spans else t.syscalls(role)
                count = sum(len(v) for v in c.values()) / n
                total = sum(sum(v) for v in c.values()) / n
                wd = t.wake.get(role, [])
                detail = ", ".join(f"{k} {len(v) / n:.1f} ({statistics.median(v):.0f})"
                                   for k, v in sorted(c.items(), key=lambda kv: -sum(kv[1])))
                wake = f"{statistics.median(wd):.0f} us" if wd else "-"
                w(f"| {p} | {role} | {count:.1f} | {total:.0f} us | {wake} | {detail} |")
                row("profile", "syscalls", p, role, count, "per construction")
                row("profile", "syscall-time", p, role, total, "us per construction")
                if wd:
                    row("profile", "wakeup-to-running", p, role, statistics.median(wd), "us")
        w("")
        points = [
            ("woken", "the answerer is woken: signal queued", None),
            ("running", "the answerer runs", None),
            ("keyctl", "it enters its first keyctl()", None),
            ("answered", "it has instantiated the key", "it has signalled back"),
            ("back", "the requester runs again", None),
            ("returned", "request_key() returns", "read() of the signalfd returns"),
            ("read", "the key has been read back", "the key has been read"),
        ]
        tl = {}
        for tag, t in traces.items():
            label, _, p = tag.partition("/")
            if label in ("syscalls", "cross-cpu"):
                rows_ = t.timelines(p == "floor")
                if rows_:
                    tl[p if label == "syscalls" else f"{p}@{label}"] = rows_
        if tl:
            tpaths = [p for p in PATHS if p in tl] + sorted(p for p in tl if "@" in p)
            med = lambda p, f: statistics.median(f(x) for x in tl[p])
            w("Where the time of one construction goes: when each step happened, in us after the "
              "requester entered `request_key()` (floor: `rt_sigqueueinfo()`), median over the "
              "traced constructions (n = " + ", ".join(f"{p} {len(tl[p])}" for p in tpaths) +
              "; `@cross-cpu`: requester and answering process pinned to different vCPUs):")
            w("")
            w("| step | " + " | ".join(tpaths) + " |")
            w("|---|" + "---:|" * len(tpaths))
            for key, name, floor_name in points:
                cells = [f"{med(p, lambda x: x[key]):.0f}" for p in tpaths]
                for p in tpaths:
                    row("profile-timeline", key, p, "", med(p, lambda x: x[key]), "us after start (traced)")
                w(f"| {name}" + (f" (floor: {floor_name})" if floor_name else "") + " | " + " | ".join(cells) + " |")
            derived = [
                ("requester in the kernel until the answerer is woken",
                 lambda x: x["woken"]),
                ("answerer: woken until running", lambda x: x["running"] - x["woken"]),
                ("answerer: running until answered", lambda x: x["answered"] - x["running"]),
                ("&nbsp;&nbsp;of which in system calls", lambda x: x["answer_sys"]),
                ("&nbsp;&nbsp;of which in user space", lambda x: x["answered"] - x["running"] - x["answer_sys"]),
                ("requester: woken until running", lambda x: x["back"] - x["requester-woken"]),
            ]
            for name, f in derived:
                cells = [f"{med(p, f):.0f}" for p in tpaths]
                for p in tpaths:
                    row("profile-steps", re.sub("&nbsp;", "", name), p, "", med(p, f), "us (traced)")
                w(f"| *{name}* | " + " | ".join(cells) + " |")
            cells = []
            for p in tpaths:
                base, _, variant = p.partition("@")
                v = run.proflat.get(f"{variant or 'syscalls'}/{base}", [])
                cells.append(f"{statistics.median(v):.0f}" if v else "-")
            w("| total as the requester timed it (traced) | " + " | ".join(cells) + " |")
            w("")
        kernel_roots = ["call_sbin_request_key", "key_alloc", "request_key_auth_new",
                        "keyctl_assume_authority", "keyctl_instantiate_key_common"]
        for tag, t in traces.items():
            label, _, p = tag.partition("/")
            if label == "syscalls" and p == "agent":
                roots = [("__x64_sys_request_key", "request_key_and_link")]
            elif label == "kernel":
                roots = [(r,) for r in kernel_roots]
            else:
                continue
            for root in roots:
                ch = t.children(root)
                total = t.all(root[-1])
                if not ch or not total:
                    continue
                w(f"`{' > '.join(root)}` ({p}, {label}: {len(total) / t.n:.1f} per construction, "
                  f"median {statistics.median(total):.0f} us), the calls it makes:")
                w("")
                w("| call | per construction | median us | share of the parent |")
                w("|---|---:|---:|---:|")
                tot = sum(total)
                for name, v in sorted(ch.items(), key=lambda kv: -sum(kv[1]))[:10]:
                    w(f"| `{name}` | {len(v) / t.n:.1f} | {statistics.median(v):.0f} | {sum(v) / tot * 100:.0f}% |")
                    row("profile", f"{' > '.join(root)} > {name}", p, label, statistics.median(v), "us")
                w("")

    # -- notes: what the numbers say about the targets, from the data above
    notes = []
    if "keyagentd" in lat and "agent" in lat and "floor" in lat:
        kf = lat["keyagentd"]["p50"] / lat["floor"]["p50"]
        af = lat["agent"]["p50"] / lat["floor"]["p50"]
        same = {p.split("@")[0]: pct(sorted(run.lat[p]), 50) for p in run.lat if p.endswith("@same-cpu")}
        cross = {p.split("@")[0]: pct(sorted(run.lat[p]), 50) for p in run.lat if p.endswith("@cross-cpu")}
        text = (f"**keyagentd against the floor** ({kf:.2f}x at the median; the minimal agent "
                f"{af:.2f}x). Both go through the same module path, so the difference is "
                "keyagentd's own work per request")
        if {"keyagentd", "agent", "floor"} <= same.keys():
            text += (f": with the requester and the agent on one vCPU, where the emulator adds no "
                     f"cross-vCPU wakeups, a construction takes {fmt_us(same['keyagentd'])} through "
                     f"keyagentd, {fmt_us(same['agent'])} through the minimal agent and the floor "
                     f"{fmt_us(same['floor'])} ({same['keyagentd'] / same['floor']:.1f}x and "
                     f"{same['agent'] / same['floor']:.1f}x)")
        text += ("; the profile above counts its system calls per request and its time in user "
                 "space.")
        notes.append(text)
        if {"agent", "floor"} <= cross.keys() and {"agent", "floor"} <= same.keys() and \
                cross["floor"] < 2 * same["floor"]:
            notes.append(
                f"**Cross-vCPU wakeups.** Pinned to different vCPUs the medians were agent "
                f"{fmt_us(cross['agent'])} and floor {fmt_us(cross['floor'])} (one vCPU: "
                f"{fmt_us(same['agent'])} and {fmt_us(same['floor'])}). How much a wakeup across "
                "vCPUs costs under TCG depends on the host's load at the time (it goes through the "
                "emulator and the host's scheduler); it is where the p90/p99 of every path and the "
                "spread of the unpinned throughput runs come from.")
        elif {"agent", "floor"} <= cross.keys():
            notes.append(
                f"**Cross-vCPU wakeups dominate the tails.** With the requester and the answering "
                f"process pinned to different vCPUs every path slows to about the same time "
                f"(median: agent {fmt_us(cross['agent'])}, floor {fmt_us(cross['floor'])}; on one "
                f"vCPU {fmt_us(same.get('agent', float('nan')))} and "
                f"{fmt_us(same.get('floor', float('nan')))}): a "
                "wakeup across vCPUs costs the emulator (and the host's scheduler, which is shared) "
                "far more than it costs hardware. Unpinned runs mix both cases, which is where the "
                "p90/p99 of every path and the spread of the throughput runs come from; "
                "/sbin/request-key is hurt less because most of its time is fork/exec on one vCPU.")
    if notes:
        w("## Notes")
        w("")
        for n_ in notes:
            w(f"- {n_}")
        w("")

    # -- summary goes first
    head = ["## Targets", "", "| target | measured | |", "|---|---:|---|"]
    head += [f"| {t} | {m} | {s} |" for t, m, s in summary]
    head.append("")
    for t, m, s in summary:
        row("targets", t, "", "", m, s.strip("*"))
    md[header_end:header_end] = head

    w("## Method")
    w("")
    w("- One boot, one guest job (`bench/guest-job.sh`): overhead first (the module is "
      "unloaded and reloaded, so no agent may be registered yet), then latency, "
      "throughput, memory and the traces.")
    w("- Each path has its own requester process in its own session keyring; the agents "
      "registered in those sessions. Paths: **keyagentd** `--type user -q` (default "
      "configuration: `create * * * builtin:instantiate %c`); **minimal C agent** "
      "(`bench/keyagent_bench_agent.c`: signalfd, `keyctl_assume_authority()` + "
      "`keyctl_instantiate()`, nothing else); **minimal channel agent** "
      "(`bench/keyagent_bench_chan_agent.c`: a blocking `read()` of the records waiting on "
      "`/dev/keyagent`, as many as fit, and one `write()` of their answers, nothing else); "
      "**/sbin/request-key** (module loaded, no agent "
      "in the session, so the module falls back), with the line "
      "`create user bench-rk:* * /bin/keyctl instantiate %k %c %S` "
      "(`bench/request-key.conf`: keyctl directly, no shell script in between); "
      "**floor**: a realtime signal (`sigqueue()`) to a reader process blocked on a "
      "signalfd, which does `keyctl_read()` + `keyctl_update()` of existing keys (standing "
      "in for assume_authority + instantiate) and signals back; the requester then reads "
      "an existing key (standing in for the read-back). No construction. **channel "
      "floor**, the same for the channel: a request-sized record (64 bytes) written to a "
      "pipe, read by a process blocked in `read()`, which does `keyctl_update()` of an "
      "existing key (standing in for the instantiation the channel's `write()` does) and "
      "writes an answer-sized record (32 bytes) back on a second pipe; the requester then "
      "reads an existing key. No construction. The channel agent is held against the "
      "channel floor, the signal agents against the signal floor.")
    w("- Keys are invalidated after each latency sample and after each throughput run, "
      "and the next run waits for the garbage collector.")
    w("- Percentiles are nearest-rank over all samples.")
    w("")
    (out / "latest.md").write_text("\n".join(md) + "\n")

    with open(out / "latest.csv", "w", newline="") as f:
        cw = csv.writer(f)
        cw.writerow(["section", "metric", "path", "param", "value", "unit"])
        cw.writerows(rows)

    plot(run, lat, out / "latency.png", stamp)
    print("\n".join(head))


def plot(run, lat, path, stamp):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("report: matplotlib missing, no plot", file=sys.stderr)
        return
    colors = {"keyagentd": "tab:blue", "keyagentd-sig": "tab:cyan", "agent": "tab:green",
              "channel": "tab:orange",
              "request-key": "tab:red", "floor": "tab:gray", "chan-floor": "tab:brown"}
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5))
    allv = [x for p in lat for x in run.lat[p]]
    if not allv:
        return
    lo, hi = max(min(allv), 1.0), max(allv)
    bins = [lo * (hi / lo) ** (i / 120) for i in range(121)]
    for p in PATHS:
        if p not in lat:
            continue
        v = sorted(run.lat[p])
        n = len(v)
        ax1.step(v, [(i + 1) / n for i in range(n)], where="post", color=colors[p],
                 label=f"{LABEL[p]}: p50 {fmt_us(lat[p]['p50'])}, p99 {fmt_us(lat[p]['p99'])} (n={n})")
        ax2.hist(v, bins=bins, color=colors[p], alpha=0.55, label=LABEL[p])
    for ax in (ax1, ax2):
        ax.set_xscale("log")
        ax.set_xlabel("request_key() until the key is read back (us, log scale)")
        ax.grid(True, which="both", alpha=0.3)
    ax1.set_ylabel("fraction of requests")
    ax1.set_title("Cumulative distribution")
    ax1.legend(loc="lower right", fontsize=8)
    ax2.set_ylabel("requests per bin")
    ax2.set_title("Histogram")
    ax2.legend(fontsize=8)
    fig.suptitle(f"keyagent upcall latency, one boot, QEMU TCG (ratios travel, absolute times do not) - {stamp}",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
