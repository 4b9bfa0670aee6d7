"""Benchmark: how the VIPs of failed nodes spread, floatip.ha.vip_layout against the ring.

For 2 to 8 nodes with 1 to 3 VIPs each, and for every set of failed nodes
(every non-empty proper subset), each VIP goes to the first surviving node of
its order; the figure is the most VIPs one survivor then holds, against the
ideal ceil(VIPs / survivors). Both the filter's orders and the ring design
(layout.ring_orders) are measured, with the filter's compute time (median of
a few runs, caches cleared, as in a fresh Ansible worker) and how many
orders and priorities of existing VIPs change when a node is appended.

Run: .venv/bin/python bench/vip_layout.py
Writes bench/results/vip_layout.json (every raw figure),
bench/results/vip_layout.md (the tables it prints) and vip_layout.png (the
share of failure sets not ideal per size, ours beside the ring, with the
worst excess over each bar). ``headline(report)``
gives its row of bench/report.py's summary from that JSON: the worst excess
over the ideal and the failure sets not ideal (the largest size with 2 VIPs a
node), ours against the ring.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections import Counter
from itertools import combinations
from pathlib import Path
from typing import Any

from _results import COLLECTIONS, RESULTS, figure_label, link_collection, machine, measured, now, pyplot, save_figure

link_collection()
sys.path.insert(0, str(COLLECTIONS))

from ansible_collections.floatip.ha.plugins.filter.vip_layout import vip_layout  # noqa: E402
from ansible_collections.floatip.ha.plugins.module_utils import layout  # noqa: E402
from ansible_collections.floatip.ha.plugins.module_utils.cluster import build_model  # noqa: E402

NODES = range(2, 9)
VIPS_PER_NODE = range(1, 4)
RUNS = 7


def model(n: int, k: int) -> dict:
    nodes = [(f"node{i}", f"10.20.0.{i}") for i in range(1, n + 1)]
    return build_model("10.20.0.0/24", nodes, vip_pool=[f"10.20.0.100-10.20.0.{99 + n * k}"], vips_per_node=k,
                       vip_backend="keepalived")


def spread(orders: list[list[str]], names: list[str]) -> dict:
    """Per failure set: the most VIPs on one survivor, the ideal, the excess; and the summary."""
    per_set = {}
    for size in range(1, len(names)):
        for failed in combinations(names, size):
            held = layout.holders(orders, set(failed))
            if any(node is None or node in failed for node in held.values()):
                raise SystemExit(f"a VIP is lost when {failed} fail")
            most = max(Counter(held.values()).values())
            ideal = -(-len(orders) // (len(names) - size))
            per_set[",".join(failed)] = {"max_load": most, "ideal": ideal, "excess": most - ideal}
    excesses = [figures["excess"] for figures in per_set.values()]
    return {
        "worst_excess": max(excesses),
        "non_ideal_sets": sum(1 for e in excesses if e > 0),
        "total_excess": sum(excesses),
        "per_failure_set": per_set,
    }


def filter_time(n: int, k: int) -> dict:
    cluster = model(n, k)
    runs = []
    for run in range(RUNS):
        layout._spread_index_orders.cache_clear()  # pylint: disable=protected-access
        layout._ring_index_orders.cache_clear()  # pylint: disable=protected-access
        start = time.perf_counter()
        vip_layout(cluster)
        runs.append((time.perf_counter() - start) * 1000)
    return {"runs_ms": [round(r, 3) for r in runs], "median_ms": round(statistics.median(runs), 3)}


def append_changes(orders_fn, n: int, k: int) -> dict:
    """Existing VIPs whose order of existing nodes, or whose priorities, change when node n+1 joins."""
    names = [f"node{i}" for i in range(1, n + 1)]
    before = orders_fn(names, k)
    after = orders_fn(names + [f"node{n + 1}"], k)[: n * k]
    orders = sum(1 for old, new in zip(before, after) if [x for x in new if x in names] != old)
    ranks = sum(1 for old, new in zip(before, after) if any(old.index(x) != new.index(x) for x in old))
    if any(old[0] != new[0] for old, new in zip(before, after)):
        raise SystemExit(f"an owner changes when node{n + 1} joins {n} nodes")
    return {"existing_vips": n * k, "orders_changed": orders, "priorities_changed": ranks}


def featured(cases: list[dict[str, Any]]) -> dict[str, Any]:
    """The case the headline names: the most nodes, with 2 VIPs a node (the lab's) where there is such a case."""
    largest = [case for case in cases if case["nodes"] == max(c["nodes"] for c in cases)]
    return next((case for case in largest if case["vips_per_node"] == 2), largest[-1])


def headline(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The summary's row: worst excess over every case, and the featured case's failure sets not ideal; the ring as the anchor."""
    cases = report.get("cases") or []

    def spread_of(design: str, label: bool) -> str:
        case = featured(cases)
        worst = max(c[design]["worst_excess"] for c in cases)
        where = f"failure sets not ideal, {case['nodes']} nodes × {case['vips_per_node']} VIPs: " if label else ""
        return f"at most {worst}; {where}{case[design]['non_ideal_sets']} of {case['failure_sets']}"

    def sizes() -> str:
        nodes, vips = [c["nodes"] for c in cases], [c["vips_per_node"] for c in cases]
        return f"{min(nodes)}-{max(nodes)} nodes × {min(vips)}-{max(vips)} VIPs"

    return [(f"VIPs above the ideal share on the busiest survivor, every failure set, {measured(sizes, 'sizes')}",
             measured(lambda: spread_of("ours", True)),
             f"the reference ring: {measured(lambda: spread_of('ring', False))} (`bench/results/vip_layout.md`)")]


def plot(report: dict[str, Any], path: Path) -> None:
    """One panel per VIPs a node: for each number of nodes, the share of failure sets not ideal, ours beside the ring."""
    plt = pyplot()
    per_node = sorted({case["vips_per_node"] for case in report["cases"]})
    fig, axes = plt.subplots(1, len(per_node), figsize=(4 * len(per_node), 4), sharey=True, squeeze=False)
    width = 0.4
    for ax, k in zip(axes[0], per_node):
        cases = [case for case in report["cases"] if case["vips_per_node"] == k]
        for offset, design, color, label in ((-width / 2, "ours", "tab:blue", "floatip.ha.vip_layout"),
                                             (width / 2, "ring", "tab:grey", "reference ring")):
            xs = [case["nodes"] + offset for case in cases]
            shares = [100 * case[design]["non_ideal_sets"] / case["failure_sets"] for case in cases]
            ax.bar(xs, shares, width, color=color, label=label)
            for x, share, case in zip(xs, shares, cases):
                if case[design]["worst_excess"]:
                    ax.text(x, share, f"+{case[design]['worst_excess']}", ha="center", va="bottom", fontsize=8)
        ax.set_title(f"{k} VIP{'s' if k > 1 else ''} a node")
        ax.set_xlabel("nodes")
        ax.set_xticks([case["nodes"] for case in cases])
    axes[0][0].set_ylabel("failure sets not ideal, % (+n: worst excess)")
    axes[0][0].legend(loc="upper left", fontsize=8)
    fig.suptitle(f"vip_layout: a survivor above its ideal share, every failure set ({figure_label(report)})", fontsize=10)
    save_figure(fig, path)


def main() -> None:
    cases = []
    for n in NODES:
        names = [f"node{i}" for i in range(1, n + 1)]
        for k in VIPS_PER_NODE:
            ours = [vip["order"] for vip in vip_layout(model(n, k))["vips"]]
            case = {
                "nodes": n,
                "vips_per_node": k,
                "vips": n * k,
                "failure_sets": 2 ** n - 2,
                "search_depth": layout.search_depth(n, k),
                "filter_time": filter_time(n, k),
                "ours": spread(ours, names),
                "ring": spread(layout.ring_orders(names, k), names),
            }
            if n < max(NODES):
                case["append_node"] = {
                    "ours": append_changes(layout.spread_orders, n, k),
                    "ring": append_changes(layout.ring_orders, n, k),
                }
            cases.append(case)

    lines = [
        "# vip_layout: spread of failed nodes' VIPs, ours against the ring",
        "",
        "Over every set of failed nodes: worst = most VIPs above the ideal share on one survivor,",
        "sets = failure sets not ideal, total = sum of the excess over every failure set.",
        "Time: the filter on one model, median of %d runs with its caches cleared." % RUNS,
        "",
        "| nodes | VIPs/node | failure sets | ours worst | ours sets | ours total | ring worst | ring sets | ring total | filter ms |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c in cases:
        o, r = c["ours"], c["ring"]
        lines.append(
            f"| {c['nodes']} | {c['vips_per_node']} | {c['failure_sets']} | {o['worst_excess']} | {o['non_ideal_sets']} | "
            f"{o['total_excess']} | {r['worst_excess']} | {r['non_ideal_sets']} | {r['total_excess']} | "
            f"{c['filter_time']['median_ms']:.1f} |"
        )
    lines += [
        "",
        "Appending node n+1 (owners and VRIDs never change): existing VIPs whose order of the existing",
        "nodes changes, and whose priorities/advskews change, out of the n x k existing VIPs.",
        "",
        "| nodes | VIPs/node | existing VIPs | ours orders | ours priorities | ring orders | ring priorities |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c in cases:
        if "append_node" in c:
            o, r = c["append_node"]["ours"], c["append_node"]["ring"]
            lines.append(
                f"| {c['nodes']}->{c['nodes'] + 1} | {c['vips_per_node']} | {o['existing_vips']} | {o['orders_changed']} | "
                f"{o['priorities_changed']} | {r['orders_changed']} | {r['priorities_changed']} |"
            )
    table = "\n".join(lines) + "\n"

    RESULTS.mkdir(parents=True, exist_ok=True)
    report = {
        "benchmark": "vip_layout",
        "date": now(),
        "machine": machine(),
        "search_budget": layout.SEARCH_BUDGET,
        "cases": cases,
    }
    (RESULTS / "vip_layout.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    (RESULTS / "vip_layout.md").write_text(table, encoding="utf-8")
    plot(report, RESULTS / "vip_layout.png")
    print(table, end="")
    print(f"\nwritten: {RESULTS / 'vip_layout.json'}, {RESULTS / 'vip_layout.md'}, {RESULTS / 'vip_layout.png'}")


if __name__ == "__main__":
    main()
