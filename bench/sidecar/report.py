#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Turns the JSON lines of bench/sidecar/sidecar_bench.sh into REPORT.md and PNG charts.

Every figure is also given as a ratio to no_mesh from the same run, and the issue's targets are
checked: sockmesh's added latency under 5% of a sidecar pair's (p50 and p99; judged on the
same-round differences from no_mesh, with a confidence interval), memory per node under 20 MB,
and concurrent connections limited only by the kernel.
"""
import argparse
import json
import math
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SIDECARS = ("haproxy", "nginx", "envoy")
WORKLOAD_COUNTS = (2, 10, 100)
ADDED_LATENCY_TARGET = 0.05
NODE_MEMORY_TARGET_MB = 20


def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def ratio(value, base):
    return f"{value / base:.2f}×" if base else "–"


def ms(value):
    return f"{value:.3f}" if value < 10 else f"{value:.1f}"


def mb(kb):
    return kb / 1024.0


def median(values):
    s = sorted(values)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


MEDIAN_FIELDS = ("achieved_rps", "cpu_cores", "own_cpu_cores", "cpu_busy_fraction")
QUANTILES = (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p99.9", 0.999))


def pooled_latency_ms(rounds):
    """Percentiles over every request of every round, from the runs' merged latency histograms
    (sockmesh-loadgen --json-histogram), with the rank rule of LatencyHistogram::Quantile; None
    when a round has no histogram (results recorded before the benchmark kept them)."""
    if not all(r.get("latency_histogram_ns") for r in rounds):
        return None
    counts = {}
    for r in rounds:
        for value_ns, count in r["latency_histogram_ns"]:
            counts[value_ns] = counts.get(value_ns, 0) + count
    buckets = sorted(counts.items())
    total = sum(count for _, count in buckets)
    out = {}
    for name, q in QUANTILES:
        rank, seen = max(1, math.ceil(q * total)), 0
        for value_ns, count in buckets:
            seen += count
            if seen >= rank:
                out[name] = round(value_ns / 1e3) / 1e3  # ms at µs resolution, as the loadgen
                break
    out["max"] = max(r["latency_ms"]["max"] for r in rounds)
    return out


def combine(rounds):
    """One load on one plane: its rounds as one row. Percentiles are taken over every request of
    every round (merged histograms) when the rounds kept them, else each is the median over the
    rounds; rates and CPU figures are medians; errors add up. `p99_rounds` keeps every round's
    p99 for the report to show the spread."""
    if len(rounds) == 1:
        return dict(rounds[0], p99_rounds=[rounds[0]["latency_ms"]["p99"]])
    out = dict(rounds[0])
    pooled = pooled_latency_ms(rounds)
    out["latency_ms"] = pooled or {q: median([r["latency_ms"][q] for r in rounds])
                                   for q in rounds[0]["latency_ms"]}
    out["pooled"] = pooled is not None
    for field in MEDIAN_FIELDS:
        out[field] = median([r[field] for r in rounds])
    out["errors"] = sum(r["errors"] for r in rounds)
    out["p99_rounds"] = [r["latency_ms"]["p99"] for r in rounds]
    return out


def median_ci(values, confidence=0.95):
    """A distribution-free confidence interval for the median: the order statistics whose ranks
    a Binomial(n, 1/2) count keeps the median between with at least `confidence`. None when there
    are too few values for one (fewer than 6 at 95%)."""
    s = sorted(values)
    n = len(s)
    tail, k, below = (1 - confidence) / 2, 0, 1  # below: 2^n P(Bin(n, 1/2) <= k)
    while k < n and below / 2 ** n <= tail:
        k += 1
        below += math.comb(n, k)
    return (s[k - 1], s[n - k]) if k else None


def round_differences(loads, plane, q, labels=None):
    """`plane`'s q-latency minus no_mesh's in the same round of the same load, in µs, for every
    (load, round) that ran both: each pair ran seconds apart, so the host's drift mostly
    cancels."""
    by_run = {}
    for r in loads:
        if r["kind"] in ("http_open", "grpc_open") and (labels is None or r["label"] in labels):
            by_run.setdefault((r["label"], r["round"]), {})[r["plane"]] = r["latency_ms"][q]
    return [(v[plane] - v["no_mesh"]) * 1000 for v in by_run.values()
            if plane in v and "no_mesh" in v]


class AddedLatency:
    """sockmesh's added latency against a sidecar pair's at one quantile, both as the median of
    their same-round differences from no_mesh, and the share with its confidence interval."""

    def __init__(self, loads, sidecar, q):
        self.mesh = round_differences(loads, "sockmesh", q)
        self.pair = round_differences(loads, sidecar, q)
        self.mesh_median = median(self.mesh) if self.mesh else None
        self.pair_median = median(self.pair) if self.pair else None
        self.ci = median_ci(self.mesh)

    def comparable(self):
        return self.ci is not None and bool(self.pair) and self.pair_median > 0

    def share(self, value):
        return max(value, 0.0) / self.pair_median

    def verdict(self):
        """pass: even the interval's top is under the target; miss: even its bottom is over it;
        otherwise this run cannot tell, which is not a pass."""
        if not self.comparable():
            return "not measured"
        if self.share(self.ci[1]) < ADDED_LATENCY_TARGET:
            return "**pass**"
        if self.share(self.ci[0]) >= ADDED_LATENCY_TARGET:
            return "**miss**"
        return "**undecided** (the interval spans 5%)"

    def describe(self):
        if not self.comparable():
            return (f"{len(self.mesh)} sockmesh and {len(self.pair)} pair round differences: too "
                    "few, or the pair added nothing")
        lo, hi = self.ci
        return (f"sockmesh {self.mesh_median:+.1f} µs (95% CI {lo:+.0f} to {hi:+.0f}, "
                f"{len(self.mesh)} same-round differences) vs the pair's {self.pair_median:+.0f} "
                f"µs ({len(self.pair)}): {self.share(self.mesh_median) * 100:.1f}% "
                f"(CI {self.share(lo) * 100:.1f}% to {self.share(hi) * 100:.1f}%)")


class Report:
    def __init__(self, rows):
        self.machine = next(r for r in rows if r["kind"] == "machine")
        self.end = next((r for r in rows if r["kind"] == "end"), {})
        self.loads = [r for r in rows if r["kind"] in
                      ("http_open", "http_closed", "grpc_open", "grpc_closed", "connect")]
        self.rss = {r["plane"]: r["rss_kb"] for r in rows if r["kind"] == "rss"}
        self.hold = {r["plane"]: r for r in rows if r["kind"] == "hold"}
        # The baseline, sockmesh, then the sidecars: the runs' own order is shuffled.
        seen = {r["plane"] for r in self.loads}
        self.planes = [p for p in ("no_mesh", "sockmesh") + SIDECARS if p in seen]
        self.sidecars = [p for p in self.planes if p in SIDECARS]
        self.labels = []
        for r in self.loads:
            if r["label"] not in self.labels:
                self.labels.append(r["label"])
        # The merged tables compare every plane over the same rounds: the paired rounds (no_mesh
        # and sockmesh only) go into the round-by-round comparison alone.
        all_plane_rounds = self.machine.get("rounds", 1)
        rounds = {}
        for r in self.loads:
            if r.get("round", 1) <= all_plane_rounds:
                rounds.setdefault((r["label"], r["plane"]), []).append(r)
        self.by = {key: combine(rs) for key, rs in rounds.items()}
        self.lines = []

    def out(self, text=""):
        self.lines.append(text)

    def labels_of(self, *kinds):
        return [l for l in self.labels if self.by[(l, self.planes[0])]["kind"] in kinds]

    def table(self, header, rows):
        self.out("| " + " | ".join(header) + " |")
        self.out("|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|")
        for row in rows:
            self.out("| " + " | ".join(row) + " |")
        self.out()

    # --- sections ---

    def header(self, command):
        m = self.machine
        self.out("# sockmesh against the sidecar model")
        self.out()
        self.out(f"Written by `{command}`{' (--quick)' if m['quick'] else ''}. "
                 "Same workload, same machine, same run; every ratio is to `no_mesh` from this run.")
        self.out()
        self.out(f"- Machine: {m['nproc']} CPUs ({m['cpu']}), {mb(m['mem_kb']) / 1024:.1f} GiB, "
                 f"kernel {m['kernel']}; load average {m['loadavg_start']} at the start, "
                 f"{self.end.get('loadavg_end', '?')} at the end (other work on the machine counts "
                 "in the whole-machine CPU figures).")
        self.out(f"- sockmesh commit {m['commit']}; {m['haproxy']}; {m['nginx']}; "
                 + (f"envoy: {m['envoy']}" if m["envoy"] else
                    "Envoy: not on PATH (no Debian package), so its plane was skipped") + ".")
        self.out(f"- Everything the benchmark starts runs at nice {m['nice']} in its own session "
                 "and autogroup.")
        self.out()
        self.out("| plane | path of a request |")
        self.out("|---|---|")
        desc = {
            "no_mesh": "client → server (no programs)",
            "sockmesh": "client → service VIP, rewritten to the server by the connect hook "
                        "(standalone agent; client and server in mesh workload cgroups; the "
                        "agent's default `--short-circuit=auto`)",
            "haproxy": "client → client-side haproxy → server-side haproxy → server",
            "nginx": "client → client-side nginx → server-side nginx → server",
            "envoy": "client → client-side envoy → server-side envoy → server",
        }
        for p in self.planes:
            self.out(f"| `{p}` | {desc[p]} |")
        self.out()
        self.out("Servers: `sockmesh-echo` (HTTP/1.1, `GET /bytes/N` answers N bytes) and "
                 "`sockmesh-product` (gRPC `GetProduct`), one of each per plane. Load: "
                 "`sockmesh-loadgen`: open loop at fixed rates (latency from the scheduled time, "
                 f"32 workers, {m['seconds']:g} s per load, {m.get('rounds', 1)} round(s) of "
                 "every fixed-rate load on every plane, then "
                 f"{m.get('paired_rounds', 0)} on `no_mesh` and `sockmesh` only), closed loop "
                 "for the maximum "
                 f"(16 workers, {m['closed_seconds']:g} s). HTTP keep-alive, one connection per "
                 "worker; gRPC over 4 HTTP/2 connections, cleartext HTTP/2 through the proxies "
                 "(haproxy `proto h2`, nginx `grpc_pass`). Proxies: 2 threads / workers each, "
                 "keep-alive upstream connections.")
        self.out()

    def targets(self):
        self.out("## Targets (from issue 6)")
        self.out()
        rows = []
        # 1. Added latency: judged on the same-round differences (see round_by_round()); the
        # merged histograms' per-load figures go beside them.
        for sidecar in self.sidecars:
            for q in ("p50", "p99"):
                added = AddedLatency(self.loads, sidecar, q)
                rows.append([f"sockmesh's added {q} latency < 5% of the {sidecar} pair's",
                             f"{added.describe()}; merged per load: "
                             f"{self.merged_per_load(sidecar, q)}", added.verdict()])
        # 2. Memory per node.
        agent_kb = max([self.rss.get("sockmesh", {}).get("agent", 0)] +
                       [self.hold.get("sockmesh", {}).get("rss_kb", {}).get("agent", 0)])
        rows.append([f"memory per node < {NODE_MEMORY_TARGET_MB} MB regardless of workloads",
                     f"agent RSS {mb(agent_kb):.1f} MB (largest seen, also while holding the idle "
                     "connections); one agent per node whatever the workload count",
                     "**pass**" if mb(agent_kb) < NODE_MEMORY_TARGET_MB else "**miss**"])
        # 3. Concurrent connections.
        if "sockmesh" in self.hold and "no_mesh" in self.hold:
            held = self.hold["sockmesh"]["result"]
            base = self.hold["no_mesh"]["result"]
            ok = held["held"] >= base["held"] or held["stop"] == "max"
            cap = self.machine["hold_max"]
            rows.append(["concurrent connections limited only by the kernel",
                         f"sockmesh held {held['held']:,} ({held['stop']}), no mesh "
                         f"{base['held']:,} ({base['stop']}), of a cap of {cap:,}"
                         + (" (held by several processes, see below)" if self.fd_spread() else ""),
                         "**pass**" if ok else "**miss**"])
        self.table(["target", "measured", "result"], rows)

    def merged_per_load(self, sidecar, q):
        """Each load's merged-histogram q (all-plane rounds only) as a share of the pair's: how
        many loads are over 5% and the worst. One round's stall moves a merged p99 by more than
        the target, so this is shown, not judged on."""
        loads = self.labels_of("http_open", "grpc_open")
        worst, over, incomparable = None, 0, 0
        for label in loads:
            base = self.by[(label, "no_mesh")]["latency_ms"][q]
            mesh = self.by[(label, "sockmesh")]["latency_ms"][q] - base
            pair = self.by[(label, sidecar)]["latency_ms"][q] - base
            if pair <= 0:
                incomparable += 1
                continue
            share = max(mesh, 0.0) / pair
            over += share >= ADDED_LATENCY_TARGET
            if worst is None or share > worst[0]:
                worst = (share, label, mesh, pair)
        text = f"{over} of {len(loads)} loads over 5%"
        if worst:
            share, label, mesh, pair = worst
            text += (f", worst {share * 100:.1f}% at {label} ({mesh * 1000:+.0f} µs vs "
                     f"{pair * 1000:+.0f} µs)")
        if incomparable:
            text += f", {incomparable} with the pair's {q} below no_mesh's"
        return text

    def fd_spread(self):
        """True when one process's descriptor limit is under --hold-max, so that the client and
        the servers held the idle connections in several processes."""
        fd_limit = self.machine.get("fd_limit", 0)
        return bool(fd_limit) and self.machine["hold_max"] > fd_limit - 500

    def latency(self):
        self.out("## Latency (ms) by data plane")
        self.out()
        rounds = self.machine.get("rounds", 1)
        pooled = all(r.get("pooled") for r in self.by.values()
                     if r["kind"] in ("http_open", "grpc_open"))
        every_round = ("over every request of all {0} rounds (the rounds' latency histograms "
                       "merged; every round runs every load on every plane once, interleaved, "
                       "the planes of each load in a shuffled order), " if pooled else
                       "over every request of a round, each the median of {0} rounds (every "
                       "round runs every load on every plane once, interleaved), ")
        self.out("Open loop; p50 / p90 / p99 "
                 + (every_round.format(rounds) if rounds > 1 else "over every request, ")
                 + "and each plane's p50 / p99 as a ratio to `no_mesh`. Charts: "
                 "`latency_1kb.png`, `latency_64kb.png`, `latency_grpc.png`.")
        self.out()
        header = ["load"] + [f"`{p}` p50 / p90 / p99" for p in self.planes]
        header += [f"`{p}` ratio p50 / p99" for p in self.planes if p != "no_mesh"]
        rows = []
        for label in self.labels_of("http_open", "grpc_open"):
            base = self.by[(label, "no_mesh")]["latency_ms"]
            row = [label]
            for p in self.planes:
                l = self.by[(label, p)]["latency_ms"]
                errors = self.by[(label, p)]["errors"]
                row.append(f"{ms(l['p50'])} / {ms(l['p90'])} / {ms(l['p99'])}"
                           + (f" ({errors} errors)" if errors else ""))
            for p in self.planes:
                if p == "no_mesh":
                    continue
                l = self.by[(label, p)]["latency_ms"]
                row.append(f"{ratio(l['p50'], base['p50'])} / {ratio(l['p99'], base['p99'])}")
            rows.append(row)
        self.table(header, rows)
        if rounds > 1:
            self.out("p99 of each round (ms), in round order: how far one run's tail moves.")
            self.out()
            self.table(["load"] + [f"`{p}`" for p in self.planes],
                       [[label] + [" / ".join(ms(v) for v in self.by[(label, p)]["p99_rounds"])
                                   for p in self.planes]
                        for label in self.labels_of("http_open", "grpc_open")])

    def round_by_round(self):
        m = self.machine
        self.out("## Added latency, round by round")
        self.out()
        self.out("Each plane's p50 / p99 minus `no_mesh`'s in the same round of the same load (the "
                 "two ran seconds apart), in µs: the median over the rounds and, for sockmesh, its "
                 "95% confidence interval (distribution-free, from order statistics). sockmesh "
                 f"ran {m.get('rounds', 1)} rounds with every plane and "
                 f"{m.get('paired_rounds', 0)} more with `no_mesh` only beside it: a sidecar "
                 "pair adds hundreds of µs, which a few rounds resolve; sockmesh adds a few, in a "
                 "tail that moves by tens from one round to the next. The latency targets are "
                 "judged on the last row (every load's rounds together): pass when the "
                 "interval's top is under 5% of the pair's median, miss when its bottom is over.")
        self.out()

        def cell(diffs, with_ci):
            if not diffs:
                return "–"
            text = f"{median(diffs):+.1f}"
            ci = median_ci(diffs) if with_ci else None
            return text + (f" ({ci[0]:+.0f} to {ci[1]:+.0f})" if ci else "")

        header = ["load", "same-round pairs", "`sockmesh` p50", "`sockmesh` p99"]
        header += [f"`{p}` p50 / p99" for p in self.sidecars]
        rows = []
        labels = self.labels_of("http_open", "grpc_open")
        for label, scope in [(l, [l]) for l in labels] + [("**all loads**", None)]:
            mesh = {q: round_differences(self.loads, "sockmesh", q, scope) for q in ("p50", "p99")}
            row = [label, str(len(mesh["p99"])), cell(mesh["p50"], True), cell(mesh["p99"], True)]
            for p in self.sidecars:
                row.append(" / ".join(cell(round_differences(self.loads, p, q, scope), False)
                                      for q in ("p50", "p99")))
            rows.append(row)
        self.table(header, rows)

    def throughput(self):
        self.out("## Maximum throughput (closed loop, 16 workers) and new connections per second")
        self.out()
        rows = []
        for label in self.labels_of("http_closed", "grpc_closed", "connect"):
            base = self.by[(label, "no_mesh")]["achieved_rps"]
            row = [label]
            for p in self.planes:
                r = self.by[(label, p)]
                row.append(f"{r['achieved_rps']:,.0f} ({ratio(r['achieved_rps'], base)})"
                           + (f", {r['errors']} errors" if r["errors"] else ""))
            rows.append(row)
        self.table(["load, requests/s (ratio)"] + [f"`{p}`" for p in self.planes], rows)
        self.out("`http new connection/request`: every request opens a connection "
                 "(`--connection-per-request`, 4 workers, 64 B answers): connections per second "
                 "from the client. The sidecars keep their own upstream connections alive, so "
                 "only the client's hop is new each time.")
        self.out()

    def cpu(self):
        self.out("## CPU per 1,000 requests/s (kernel time included)")
        self.out()
        self.out("Over each open-loop load, in CPU cores per 1,000 achieved requests/s. "
                 "**Whole machine**: busy time from `/proc/stat` (user, nice, system, irq, "
                 "softirq, steal), so eBPF work, which is kernel time, counts; so does anything "
                 "else running on the machine (see the load averages above). **Own processes**: "
                 "user + system time of the processes the benchmark started (client, servers, "
                 "proxies, agent; `/proc/<pid>/stat`), which other load does not move, but which "
                 "misses softirq time the kernel does not charge to a process. "
                 "Charts: `cpu.png` (whole machine), `cpu_own.png`.")
        self.out()
        busy = [self.by[(l, p)]["cpu_busy_fraction"] for l in self.labels_of("http_open", "grpc_open")
                for p in self.planes]
        if busy and min(busy) > 0.9:
            self.out(f"**In this run the machine was busy for {min(busy) * 100:.0f}% or more of "
                     "every load whatever the plane (other work on it), so the whole-machine "
                     "figures measure that work, not the data planes; compare the own-process "
                     "figures.**")
            self.out()
        rows = []
        for label in self.labels_of("http_open", "grpc_open"):
            row = [label]
            base = self.by[(label, "no_mesh")]
            for p in self.planes:
                r = self.by[(label, p)]
                row.append(f"{self.cpu_per_k(r):.3f} ({ratio(self.cpu_per_k(r), self.cpu_per_k(base))})"
                           f" / {self.cpu_per_k(r, 'own_cpu_cores'):.3f} "
                           f"({ratio(self.cpu_per_k(r, 'own_cpu_cores'), self.cpu_per_k(base, 'own_cpu_cores'))})")
            rows.append(row)
        self.table(["load: whole machine (ratio) / own processes (ratio)"] +
                   [f"`{p}`" for p in self.planes], rows)

    @staticmethod
    def cpu_per_k(r, field="cpu_cores"):
        return r[field] / (r["achieved_rps"] / 1000.0) if r["achieved_rps"] else 0.0

    def memory(self):
        self.out("## Memory")
        self.out()
        self.out("RSS (VmRSS, nginx with its workers) after the loads. A sidecar runs beside "
                 "every workload, the agent once per node: the sidecar model's memory per node "
                 "is the RSS per proxy × workloads. This run has 2 workloads (client and "
                 "server); 10 and 100 are that figure multiplied. Chart: `memory.png`.")
        self.out()
        rows = []
        for p in self.planes:
            if p == "no_mesh":
                continue
            r = self.rss[p]
            if p == "sockmesh":
                per = r["agent"]
                rows.append([f"`{p}`", f"agent {mb(per):.1f} MB per node"] +
                            [f"{mb(per):.1f} MB" for _ in WORKLOAD_COUNTS])
            else:
                per = (r["client_proxy"] + r["server_proxy"]) / 2
                rows.append([f"`{p}`", f"{mb(per):.1f} MB per proxy (client side "
                                       f"{mb(r['client_proxy']):.1f}, server side "
                                       f"{mb(r['server_proxy']):.1f})"] +
                            [f"{mb(per * n):.1f} MB" for n in WORKLOAD_COUNTS])
        self.table(["plane", "measured"] + [f"{n} workloads" for n in WORKLOAD_COUNTS], rows)

    def hold_section(self):
        self.out("## Concurrent idle connections")
        self.out()
        m = self.machine
        self.out(f"`bench/sidecar/hold_connections.py` opens connections one after another in "
                 f"each of its processes (from 5 source addresses), sends one request on each and "
                 f"keeps it open, until one "
                 f"fails, {m['hold_max']:,} are open, or {m['hold_seconds']:g} s have passed. RSS "
                 "is read while they are all open. `held` counts those still open once all were "
                 "opened: a proxy out of connection slots may close idle ones to take new ones.")
        self.out()
        fd_limit = m.get("fd_limit", 0)
        if self.fd_spread():
            clients = math.ceil(m["hold_max"] / (fd_limit - 256))
            self.out(f"Here every process may hold at most {fd_limit:,} descriptors (the hard "
                     "`RLIMIT_NOFILE`; raising it needs `CAP_SYS_RESOURCE`, which root lacks on "
                     "this machine), one per connection. So the client side is "
                     f"{clients} `hold_connections.py` processes opening their shares at once, "
                     f"and the server side {m.get('hold_servers', 1)} `sockmesh-echo` processes "
                     "per plane sharing its address (`SO_REUSEPORT`, the kernel spreading the "
                     "connections). A proxy stays one process, as a sidecar is, with that limit: "
                     f"nginx `worker_connections` {fd_limit - 200:,} per worker (2 workers), "
                     f"HAProxy `maxconn` {(fd_limit - 300) // 2:,} (it reserves two descriptors "
                     "per connection).")
            self.out()
        rows = []
        for p in self.planes:
            h = self.hold.get(p)
            if not h:
                continue
            res, rss = h["result"], h["rss_kb"]
            mem = ", ".join(f"{k.replace('_', ' ')} {mb(v):.1f} MB" for k, v in rss.items())
            stop = {"max": "cap reached", "time": "time limit", "failure": "failed"}[res["stop"]]
            rows.append([f"`{p}`", f"{res['held']:,}", f"{stop}"
                         + (f": {res['error']}" if res["error"] else "")
                         + (f"; {res['dropped']:,} opened but closed by the peer before all were "
                            "open" if res.get("dropped") else ""),
                         f"{res['seconds']:.1f}", mem])
        self.table(["plane", "held", "stopped by", "seconds to open", "RSS while held"], rows)

    # --- charts ---

    def charts(self, out_dir):
        charts = []
        for size, name in (("1024B", "latency_1kb"), ("65536B", "latency_64kb")):
            labels = [l for l in self.labels_of("http_open") if f" {size} " in f" {l} "]
            charts.append((name, f"HTTP/1.1 {size} responses: latency by data plane (open loop)",
                           "ms (log scale)", 1,
                           [(f"{l.split('@')[1]} {q}",
                             [self.by[(l, p)]["latency_ms"][q] for p in self.planes])
                            for l in labels for q in ("p50", "p90", "p99")]))
        grpc = self.labels_of("grpc_open")
        charts.append(("latency_grpc", "gRPC GetProduct: latency by data plane (open loop)",
                       "ms (log scale)", 1,
                       [(f"{l.split('@')[1]} {q}",
                         [self.by[(l, p)]["latency_ms"][q] for p in self.planes])
                        for l in grpc for q in ("p50", "p90", "p99")]))
        charts.append(("cpu", "Whole-machine CPU per 1,000 requests/s (kernel included)",
                       "CPU cores per 1,000 req/s", 0,
                       [(l.replace("http ", "").replace("grpc get-product", "grpc"),
                         [self.cpu_per_k(self.by[(l, p)]) for p in self.planes])
                        for l in self.labels_of("http_open", "grpc_open")]))
        charts.append(("cpu_own", "CPU of the processes the benchmark started, per 1,000 requests/s",
                       "CPU cores per 1,000 req/s", 0,
                       [(l.replace("http ", "").replace("grpc get-product", "grpc"),
                         [self.cpu_per_k(self.by[(l, p)], "own_cpu_cores") for p in self.planes])
                        for l in self.labels_of("http_open", "grpc_open")]))
        charts.append(("throughput", "Maximum throughput (closed loop) and new connections/s",
                       "requests/s", 0,
                       [(l, [self.by[(l, p)]["achieved_rps"] for p in self.planes])
                        for l in self.labels_of("http_closed", "grpc_closed", "connect")]))
        mem_rows = []
        for n in WORKLOAD_COUNTS:
            values = []
            for p in self.planes:
                r = self.rss.get(p, {})
                if p == "no_mesh":
                    values.append(0)
                elif p == "sockmesh":
                    values.append(mb(r["agent"]))
                else:
                    values.append(mb((r["client_proxy"] + r["server_proxy"]) / 2 * n))
            mem_rows.append((f"{n} workloads", values))
        meshes = [p for p in self.planes if p != "no_mesh"]
        charts.append(("memory", "Data plane memory per node: agent vs proxy per workload",
                       "MB RSS (log scale)", 1,
                       [(label, values[1:]) for label, values in mem_rows], meshes))
        for chart in charts:
            name, title, ylabel, logy, rows = chart[:5]
            planes = chart[5] if len(chart) > 5 else self.planes
            data = os.path.join(out_dir, f".{name}.dat")
            with open(data, "w") as f:
                f.write("load " + " ".join(planes) + "\n")
                for label, values in rows:
                    f.write(json.dumps(label) + " " +
                            " ".join("NaN" if v != v else f"{v:.6g}" for v in values) + "\n")
            png = os.path.join(out_dir, f"{name}.png")
            subprocess.run(["gnuplot", "-e",
                            f"data='{data}'; out='{png}'; chart_title='{title}'; "
                            f"ylabel='{ylabel}'; ncols={len(planes) + 1}; logy={logy}; "
                            f"color_offset={self.planes.index(planes[0])}",
                            os.path.join(HERE, "bars.gp")], check=True)
            os.remove(data)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--results", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--command", default="bash bench/run_sidecar_bench.sh")
    args = parser.parse_args()
    report = Report(load(args.results))
    for needed in ("no_mesh", "sockmesh"):
        if needed not in report.planes:
            sys.exit(f"report: no {needed} results in {args.results}")
    report.header(args.command)
    report.targets()
    report.latency()
    report.round_by_round()
    report.throughput()
    report.cpu()
    report.memory()
    report.hold_section()
    os.makedirs(args.out, exist_ok=True)
    report.charts(args.out)
    with open(os.path.join(args.out, "REPORT.md"), "w") as f:
        f.write("\n".join(report.lines).rstrip() + "\n")
    print(f"report: wrote {os.path.join(args.out, 'REPORT.md')} and the charts")


if __name__ == "__main__":
    main()
