#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""bench/sidecar/report.py's statistics: the median's confidence interval, the same-round
differences the latency targets are judged on, and which rounds the merged tables use."""
import os
import random
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench",
                                "sidecar"))
import report  # noqa: E402


def run(plane, label, rnd, p50, p99, kind="http_open"):
    """One fixed-rate load's result line, latencies in ms."""
    return {"kind": kind, "plane": plane, "label": label, "round": rnd,
            "latency_ms": {"p50": p50, "p90": p99, "p99": p99, "max": p99},
            "achieved_rps": 1000.0, "cpu_cores": 0.1, "own_cpu_cores": 0.1,
            "cpu_busy_fraction": 0.1, "errors": 0}


class MedianCiTest(unittest.TestCase):
    def test_ranks_are_the_binomial_ones(self):
        # n = 56 at 95%: P(Bin(56, 1/2) <= 20) = 0.0220 <= 0.025 < P(<= 21) = 0.0407, so the
        # interval is the 21st and 36th smallest (it covers the median with 1 - 2 * 0.0220).
        self.assertEqual(report.median_ci(list(range(1, 57))), (21, 36))
        self.assertEqual(report.median_ci([5, 1, 4, 2, 6, 3]), (1, 6))

    def test_too_few_values_give_no_interval(self):
        self.assertIsNone(report.median_ci([1, 2, 3, 4, 5]))
        self.assertIsNone(report.median_ci([]))

    def test_covers_the_true_median_at_least_as_often_as_claimed(self):
        rng = random.Random(6)
        trials, covered = 2000, 0
        for _ in range(trials):
            # Heavy right tail, as round-to-round p99 differences have; true median 0.
            sample = [rng.choice((-1, 1)) * rng.paretovariate(1.5) for _ in range(40)]
            lo, hi = report.median_ci(sample)
            covered += lo <= 0 <= hi
        self.assertGreaterEqual(covered / trials, 0.94)
        self.assertLessEqual(covered / trials, 0.99)


class RoundDifferencesTest(unittest.TestCase):
    def test_pairs_only_runs_of_the_same_load_and_round(self):
        loads = [run("no_mesh", "a", 1, 0.100, 0.200), run("sockmesh", "a", 1, 0.103, 0.210),
                 run("no_mesh", "a", 2, 0.120, 0.300), run("sockmesh", "a", 2, 0.118, 0.290),
                 run("no_mesh", "b", 1, 0.200, 0.400),  # no sockmesh run beside it
                 run("sockmesh", "b", 2, 0.500, 0.900)]  # no no_mesh run beside it
        self.assertEqual(sorted(round(d, 6) for d in
                                report.round_differences(loads, "sockmesh", "p99")), [-10, 10])
        self.assertEqual(sorted(round(d, 6) for d in
                                report.round_differences(loads, "sockmesh", "p50", ["a"])), [-2, 3])
        self.assertEqual(report.round_differences(loads, "sockmesh", "p50", ["b"]), [])


def loads_with(mesh_added_us, pair_added_us):
    """no_mesh, sockmesh and haproxy runs of one load, a round per pair of added latencies."""
    out = []
    for rnd, (mesh, pair) in enumerate(zip(mesh_added_us, pair_added_us), start=1):
        out += [run("no_mesh", "l", rnd, 0.1, 0.2),
                run("sockmesh", "l", rnd, 0.1 + mesh / 1e3, 0.2 + mesh / 1e3),
                run("haproxy", "l", rnd, 0.1 + pair / 1e3, 0.2 + pair / 1e3)]
    return out


class AddedLatencyTest(unittest.TestCase):
    def test_pass_when_the_whole_interval_is_under_five_percent(self):
        added = report.AddedLatency(loads_with([-3, -1, 0, 1, 2, 4, 5, 6, 3, 2], [300] * 10),
                                    "haproxy", "p99")
        self.assertEqual(added.verdict(), "**pass**")

    def test_miss_when_the_whole_interval_is_over_five_percent(self):
        added = report.AddedLatency(loads_with([20, 22, 25, 30, 28, 26, 21, 24, 23, 27],
                                               [300] * 10), "haproxy", "p99")
        self.assertEqual(added.verdict(), "**miss**")

    def test_undecided_is_not_a_pass(self):
        # Median 2% of the pair's, but the interval reaches past 5%: noise this run cannot rule out.
        added = report.AddedLatency(loads_with([-40, -20, 0, 2, 4, 6, 6, 8, 30, 60], [300] * 10),
                                    "haproxy", "p99")
        self.assertIn("undecided", added.verdict())
        self.assertIn("sockmesh +5.0 µs (95% CI -20 to +30", added.describe())

    def test_a_pair_that_adds_nothing_is_no_yardstick(self):
        added = report.AddedLatency(loads_with([1] * 8, [-5] * 8), "haproxy", "p99")
        self.assertEqual(added.verdict(), "not measured")


class MergedTablesTest(unittest.TestCase):
    def test_paired_rounds_stay_out_of_the_all_plane_tables(self):
        rows = [{"kind": "machine", "rounds": 1, "paired_rounds": 1}]
        rows += [run(p, "l", 1, 0.1, 0.2) for p in ("no_mesh", "sockmesh", "haproxy")]
        # Round 2 ran no_mesh and sockmesh only, sockmesh 10 ms slower.
        rows += [run("no_mesh", "l", 2, 0.1, 0.2), run("sockmesh", "l", 2, 10.1, 10.2)]
        r = report.Report(rows)
        self.assertEqual(r.by[("l", "sockmesh")]["latency_ms"]["p99"], 0.2)
        self.assertEqual(len(report.round_differences(r.loads, "sockmesh", "p99")), 2)


if __name__ == "__main__":
    unittest.main()
