"""The benchmarks' headline rows (bench/NAME.py's headline) and bench/report.py's summary and README update."""

from __future__ import annotations

import importlib
import json
import sys
import types
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))  # the scripts import _results and each other as they do when run from bench/

vip_layout = importlib.import_module("vip_layout")
runtime_api = importlib.import_module("runtime_api")
reload_under_load = importlib.import_module("reload_under_load")
config_sync = importlib.import_module("config_sync")
rolling_maintenance = importlib.import_module("rolling_maintenance")
report = importlib.import_module("report")
failover_gap = importlib.import_module("failover_gap")
bench_all = importlib.import_module("all")

HEADLINED = (vip_layout, runtime_api, reload_under_load, config_sync, rolling_maintenance)
MACHINE = {"cores": 2, "kernel": "6.1.0-test", "arch": "x86_64", "python": "3.11.7", "load_start": [0.1, 0.2, 0.3],
           "load_end": [0.4, 0.5, 0.6]}


def spread(worst: int, sets: int) -> dict[str, int]:
    return {"worst_excess": worst, "non_ideal_sets": sets, "total_excess": sets}


def vip_case(nodes: int, k: int, ours: tuple[int, int], ring: tuple[int, int]) -> dict[str, Any]:
    return {"nodes": nodes, "vips_per_node": k, "failure_sets": 2 ** nodes - 2, "ours": spread(*ours), "ring": spread(*ring)}


def load(ok: int, failed: int, seconds: float = 10.0, **extra: Any) -> dict[str, Any]:
    return {"ok": ok, "failed": failed, "seconds": seconds, **extra}


def maintenance_report() -> dict[str, Any]:
    return {
        "date": "2026-01-02T03:04:05+00:00", "machine": MACHINE, "method": {"anchor_s": 10.0},
        "nodes": ["n1", "n2", "n3", "n4", "n5"],
        "load": {"anchor": load(1477, 3, 14.7, retried=2, delivered={"accepted": 370, "delivered": 369}),
                 "maintenance": load(9480, 4, 103.9, retried=7, delivered={"accepted": 2371, "delivered": 2370})},
        "converge": {"anchor_s": 12.34, "first_s": 150.1, "idempotent_s": 89.8},
        "maintenance": {"rc": 0, "began": 1000.0, "ended": 1099.3,
                        "windows": {"n1": [1000.5, 1022.1], "n2": [1022.2, 1040.8], "n3": [1041.0, 1060.0],
                                    "n4": [1060.0, 1079.3], "n5": [1079.4, 1099.0]}},
        "notes": [],
    }


def config_report() -> dict[str, Any]:
    served = [{"cs-node1": 2.0 + i / 10, "cs-node2": 2.5, "cs-node3": None if i == 0 else 3.0} for i in range(4)]
    pushes = [{"marker": f"m{i}", "push_s": 0.5, "served_s": row} for i, row in enumerate(served)]
    return {
        "date": "2026-01-01T17:00:00+00:00", "machine": MACHINE, "method": {"pushes": 4, "gap_s": 10.0, "anchor_s": 20.0},
        "nodes": ["cs-node1", "cs-node2", "cs-node3"], "pushes": pushes,
        "load": {"anchor": load(2703, 0, 21.4), "pushes": load(31570, 11, 265.3)},
        "per_node": {"cs-node1": {"served": 4, "median": 2.149, "p95": 2.3, "max": 2.3},
                     "cs-node2": {"served": 4, "median": 2.5, "p95": 2.5, "max": 2.5},
                     "cs-node3": {"served": 3, "median": 3.0, "p95": 3.0, "max": 3.012}},
        "push_alone": {"median": 0.514, "p95": 0.55, "max": 0.554},
    }


def reload_report() -> dict[str, Any]:
    return {
        "date": "2026-01-01T13:01:55+00:00", "machine": MACHINE, "method": {"rate": 600.0, "reload_s": 60.0},
        "phases": [{"name": "anchor (no reload)", "requests": 6000, "failed": 1},
                   {"name": "reload every second", "requests": 36000, "failed": 1234, "reloads": [{"t_s": 0.5}] * 60}],
    }


# --- each benchmark's headline ------------------------------------------------


def test_vip_layout_headline() -> None:
    cases = [vip_case(2, 1, (0, 0), (0, 0)), vip_case(5, 3, (0, 0), (1, 5)),
             vip_case(8, 1, (1, 48), (1, 96)), vip_case(8, 2, (1, 24), (2, 144)), vip_case(8, 3, (1, 56), (3, 184))]
    assert vip_layout.headline({"cases": cases}) == [(
        "VIPs above the ideal share on the busiest survivor, every failure set, 2-8 nodes × 1-3 VIPs",
        "at most 1; failure sets not ideal, 8 nodes × 2 VIPs: 24 of 254",
        "the reference ring: at most 3; 144 of 254 (`bench/results/vip_layout.md`)",
    )]
    # Without a case of 2 VIPs a node, the largest one.
    (_what, figure, _anchor), = vip_layout.headline({"cases": cases[:3]})
    assert figure == "at most 1; failure sets not ideal, 8 nodes × 1 VIPs: 48 of 254"


def test_runtime_api_headline_from_one_repeat() -> None:
    """The default is one repeat: summarize, table and headline work on it, the median of one being that one."""
    result = {"method": {"servers": 100, "repeats": 1}, "anchor_s": [0.8], "haproxy": "HAProxy 2.6", "date": "2026-01-01T00:00:00+00:00",
              "machine": MACHINE, "versions": {"ansible-core": "2.19", "community.general": "11.4"},
              "tools": {"ours": {"drain_s": [1.5], "ready_s": [1.1]}, "community": {"drain_s": [35.4], "ready_s": [27.5]}}}
    runtime_api.summarize(result)
    assert result["tools"]["ours"]["median_total_s"] == 2.6
    assert result["ratio"] == 24.2 and result["ratio_net"] == 61.3
    assert runtime_api.headline(result) == [(
        "drain and re-enable 100 servers: `floatip.ha.haproxy_server`",
        "2.6 s",
        "`community.general.haproxy`, same haproxy: 62.9 s (24.2x; 61x net of Ansible's start-up)",
    )]
    text = runtime_api.table(result)
    assert "Times: one repeat" in text and "Ansible's start-up: 0.800 s" in text
    assert "| floatip.ha.haproxy_server | 1 | 1.50 | 1.10 | 2.60 | 1.00 | 1 | 1 |" in text


def test_reload_under_load_headline() -> None:
    assert reload_under_load.headline(reload_report()) == [(
        "HAProxy reloaded every second for 60 s under 600 requests/s", "1,234 failed of 36,000", "no reload: 1 of 6,000")]


def test_config_sync_headline() -> None:
    assert config_sync.headline(config_report()) == [(
        "a config change pushed to Mercurial until every node serves it",
        "median 2.1-3.0 s per node, max 3.01 s (4 pushes, 3 nodes, 1 not served within 30 s; target 5 s); "
        "11 failed of 31,581 requests meanwhile",
        "`hg push` alone: median 0.51 s; the same load without pushes: 0 failed of 2,703",
    )]


def test_rolling_maintenance_headline() -> None:
    maintained, converged = rolling_maintenance.headline(maintenance_report())
    assert maintained == (
        "the 5-node mail ring maintained one node at a time (`playbooks/rolling_maintenance.yml`) under HTTP and SMTP load",
        "4 failed of 9,484 requests, 7 retried; mail: 2,370 of 2,371 delivered; each node out of service 18.6-21.6 s, 99.3 s in all",
        "the same load without maintenance (15 s): 3 failed of 1,480 requests, 2 retried; mail: 369 of 370 delivered",
    )
    assert converged == (
        "site.yml on the 5 nodes, pipelining on: its first run and the idempotent one (changed=0)",
        "first run 150 s; idempotent run 90 s",
        "a playbook gathering facts and running one `ansible.builtin.ping` on the same nodes: 12.3 s",
    )


def test_rolling_maintenance_table_shows_the_converge_anchor() -> None:
    text = rolling_maintenance.table(maintenance_report())
    assert "| anchor: facts and one `ansible.builtin.ping` on the nodes (ansible-playbook, same inventory) | 12.3 |" in text
    assert "| first run | 150.1 |" in text


def test_the_converge_anchor_pings_the_nodes() -> None:
    import yaml  # pylint: disable=import-outside-toplevel

    play, = yaml.safe_load(rolling_maintenance.ANCHOR_PLAY)
    assert play["hosts"] == "floatip_nodes" and play["gather_facts"] is True
    assert [list(task) for task in play["tasks"]] == [["name", "ansible.builtin.ping"]]


# --- incomplete reports -------------------------------------------------------


@pytest.mark.parametrize("module", HEADLINED, ids=lambda module: module.__name__)
def test_an_empty_report_is_not_measured(module: types.ModuleType) -> None:
    rows = module.headline({})
    assert rows
    for row in rows:
        assert len(row) == 3 and all(isinstance(text, str) for text in row)
        assert "not measured" in row[1] and "not measured" in row[2]


def test_incomplete_reports_say_what_is_not_measured() -> None:
    # The load did not report (failed -1), the run stopped before the maintenance, an old JSON without the anchor.
    old = maintenance_report()
    old["load"]["anchor"]["failed"] = -1
    del old["load"]["maintenance"], old["converge"]["anchor_s"]
    old["maintenance"] = {}
    maintained, converged = rolling_maintenance.headline(old)
    assert maintained[1:] == ("requests not measured; windows not measured", "the same load without maintenance not measured")
    assert converged[1:] == ("first run 150 s; idempotent run 90 s",
                             "a playbook gathering facts and running one `ansible.builtin.ping` on the same nodes: not measured")

    stopped = config_report()
    del stopped["load"]["pushes"]
    stopped["push_alone"]["median"] = None
    _what, figure, anchor = config_sync.headline(stopped)[0]
    assert figure.endswith("; requests meanwhile not measured") and figure.startswith("median 2.1-3.0 s per node")
    assert anchor == "`hg push` alone: not measured; the same load without pushes: 0 failed of 2,703"

    anchor_only = reload_report()
    anchor_only["phases"] = anchor_only["phases"][:1]
    assert reload_under_load.headline(anchor_only)[0][1:] == ("not measured", "no reload: 1 of 6,000")

    assert runtime_api.headline({"tools": {"ours": {"median_total_s": None}}})[0][1] == "not measured"


# --- report.py ----------------------------------------------------------------


README = "# Project\r\n\r\nSome text | with a pipe.\n<!-- bench:begin -->\nthe old table\n| a | b |\n<!-- bench:end -->\ntail\n\nno newline at the end"


def test_the_table_goes_between_the_markers_and_the_rest_stays() -> None:
    block = ["The latest figures:", "", *report.table_lines([{"what": "w|x", "figure": "f", "anchor": "a"}])]
    updated = report.replace_between(README, block)
    head, tail = README.partition("<!-- bench:begin -->\n")[0], README.partition("<!-- bench:end -->")[2]
    assert updated == (head + "<!-- bench:begin -->\nThe latest figures:\n\n| what | figure | anchor, in the same run |\n|---|---|---|\n"
                       "| w\\|x | f | a |\n<!-- bench:end -->" + tail)
    assert report.replace_between(updated, block) == updated


def test_crlf_files_keep_their_line_ends(tmp_path: Path) -> None:
    path = tmp_path / "README.md"
    path.write_bytes(b"top\r\n<!-- bench:begin -->\r\nold\r\n<!-- bench:end -->\r\nbottom\r\n")
    report.update_readme(path, ["new", "table"])
    assert path.read_bytes() == b"top\r\n<!-- bench:begin -->\r\nnew\r\ntable\r\n<!-- bench:end -->\r\nbottom\r\n"


@pytest.mark.parametrize("text", ["no markers at all\n", "<!-- bench:begin -->\nonly the start\n",
                                  "<!-- bench:end -->\nthe end first\n<!-- bench:begin -->\n", "inline <!-- bench:begin --> x\n<!-- bench:end -->\n"])
def test_a_file_without_the_markers_is_refused(tmp_path: Path, text: str) -> None:
    path = tmp_path / "README.md"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(report.MarkersMissing, match=str(path)):
        report.update_readme(path, ["table"])
    assert path.read_text(encoding="utf-8") == text


def write_results(directory: Path, run: dict[str, Any] | None = None) -> None:
    (directory / "reload_under_load.json").write_text(json.dumps(reload_report()), encoding="utf-8")
    (directory / "reload_under_load.md").write_text("# reload_under_load: title\n\n| phase |\n|---|\n| x |\n\n```\n# not a heading\n```\n",
                                                    encoding="utf-8")
    (directory / "reload_under_load.png").write_bytes(b"png")
    (directory / "rolling_maintenance.json").write_text(json.dumps(maintenance_report()), encoding="utf-8")
    if run is not None:
        (directory / "run.json").write_text(json.dumps(run), encoding="utf-8")


def test_report_main_writes_the_summary_and_the_readme(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    results = tmp_path / "results"
    results.mkdir()
    run = {"started": "2026-01-02T01:00:00+00:00", "ended": "2026-01-02T01:52:00+00:00", "total_s": 3120.0,
           "steps": [{"name": "vip_layout", "rc": 0, "seconds": 1.2, "concurrent_with": []},
                     {"name": "config_sync", "rc": 1, "seconds": 440.7, "concurrent_with": ["runtime_api"]}]}
    write_results(results, run)
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- bench:begin -->\nold\n<!-- bench:end -->\nend\n", encoding="utf-8")
    monkeypatch.setattr(report, "RESULTS", results)
    assert report.main(["--readme", str(readme)]) == 0

    summary = json.loads((results / "report.json").read_text(encoding="utf-8"))
    assert summary["reports"] == ["reload_under_load", "rolling_maintenance"]
    assert summary["date"] == "2026-01-02T03:04:05+00:00" and summary["machine"]["cores"] == 2 and summary["run"] == run
    assert [(row["bench"], row["figure"]) for row in summary["rows"]] == [
        ("reload_under_load", "1,234 failed of 36,000"),
        ("rolling_maintenance", "4 failed of 9,484 requests, 7 retried; mail: 2,370 of 2,371 delivered; "
                                "each node out of service 18.6-21.6 s, 99.3 s in all"),
        ("rolling_maintenance", "first run 150 s; idempotent run 90 s")]

    text = (results / "report.md").read_text(encoding="utf-8")
    assert "2 cores, kernel 6.1.0-test, 2026-01-02T03:04:05+00:00" in text
    assert "reload_under_load 2026-01-01T13:01:55+00:00" in text
    assert "The run: 52 min in all" in text and "| config_sync | 441 | 1 | runtime_api |" in text
    assert "| HAProxy reloaded every second for 60 s under 600 requests/s | 1,234 failed of 36,000 | no reload: 1 of 6,000 |" in text
    assert "\n## reload_under_load: title\n" in text and "\n# not a heading\n" in text
    assert "![reload_under_load](reload_under_load.png)" in text and "![rolling_maintenance]" not in text

    lines = readme.read_text(encoding="utf-8").splitlines()
    assert lines[:2] == ["intro", "<!-- bench:begin -->"] and lines[-2:] == ["<!-- bench:end -->", "end"]
    assert lines[2] == ("The latest figures, on a machine with 2 cores and kernel 6.1.0-test, from 2026-01-01 to 2026-01-02; "
                        "the whole run took 52 min (`bench/report.py`; every table and plot in `bench/results/report.md`):")
    assert lines[4:6] == ["| what | figure | anchor, in the same run |", "|---|---|---|"]
    assert len(lines) == 2 + 4 + len(summary["rows"]) + 2


def test_report_main_refuses_a_readme_without_markers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    write_results(tmp_path)
    readme = tmp_path / "README.md"
    readme.write_text("no markers\n", encoding="utf-8")
    monkeypatch.setattr(report, "RESULTS", tmp_path)
    assert report.main(["--readme", str(readme)]) == 2
    assert str(readme) in capsys.readouterr().err
    assert readme.read_text(encoding="utf-8") == "no markers\n"


def test_report_main_without_reports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(report, "RESULTS", tmp_path)
    assert report.main([]) == 1
    assert "vip_layout.json" in capsys.readouterr().err
    assert not (tmp_path / "report.md").exists()


def test_a_bench_without_headline_is_a_note(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "failover_gap", types.ModuleType("failover_gap"))
    rows, notes = report.headlines({"reload_under_load": reload_report(), "failover_gap": {}})
    assert [row["bench"] for row in rows] == ["reload_under_load"]
    assert notes == ["failover_gap: bench/failover_gap.py has no headline() yet; its figures are in its own section below"]


def test_a_run_still_being_written_does_not_break_the_summary() -> None:
    assert report.run_lines(None) == []
    assert report.run_lines({"steps": [{"name": "vip_layout"}]}) == [
        "The run: an unknown time in all (? to ?).", "", "| step | s | rc | alongside |", "|---|---:|---:|---|", "| vip_layout | - | - | - |", ""]


# --- the order of make bench ------------------------------------------------


def test_config_sync_measures_after_failover_gap_only_when_that_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bench_all, "RESULTS", tmp_path)
    (tmp_path / ".failover_gap.ended").touch()  # left by an earlier run
    plan = bench_all.stages()
    bench_all.wait_for_ends(plan)
    steps = {step.name: step for stage in plan for chain in stage for step in chain}
    assert steps["config_sync"].args == ["--measure-after", str(tmp_path / ".failover_gap.ended")]
    assert not (tmp_path / ".failover_gap.ended").exists()
    assert all(step.args == [] for name, step in steps.items() if name != "config_sync")
    # config_sync alone (--only) does not wait for a step that never runs.
    alone = [[[bench_all.Step("config_sync", measure_after="failover_gap")]]]
    bench_all.wait_for_ends(alone)
    assert alone[0][0][0].args == []


def test_config_sync_waits_for_its_marker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config_sync.time, "sleep", lambda _s: (tmp_path / "ended").touch())
    assert config_sync.wait_for(tmp_path / "ended", limit=60) < 5
    with pytest.raises(RuntimeError, match="did not appear within 0 s"):
        config_sync.wait_for(tmp_path / "never", limit=0)


def lane(index: int, setting: Any, trials: dict[str, int]) -> Any:
    return failover_gap.Lane(index, setting, trials, lab=None)


def test_lanes_create_their_labs_the_longest_first() -> None:
    by_name = {s.name: s for s in failover_gap.settings()}
    lanes = [lane(0, by_name["keepalived"], {"freeze": 20, "kill": 20}), lane(1, by_name["keepalived_fast"], {"freeze": 20, "kill": 20}),
             lane(2, by_name["heartbeat"], {"freeze": 10}), lane(3, by_name["heartbeat"], {"kill": 20})]
    turns = failover_gap.LabTurns(lanes)
    assert turns.order == [3, 0, 2, 1]
    stop = failover_gap.threading.Event()
    created: list[int] = []

    def create(index: int) -> None:
        with turns.turn(index, stop):
            created.append(index)

    threads = [failover_gap.threading.Thread(target=create, args=(i,)) for i in (1, 2, 0)]
    for thread in threads:
        thread.start()
    failover_gap.time.sleep(0.2)
    assert created == []  # everyone waits for lane 3
    create(3)
    for thread in threads:
        thread.join(timeout=10)
    assert created == [3, 0, 2, 1]


def test_a_lane_waiting_for_its_turn_gives_up_when_the_bench_stops() -> None:
    setting = failover_gap.settings()[0]
    turns = failover_gap.LabTurns([lane(0, setting, {"kill": 20}), lane(1, setting, {"kill": 10})])
    stop = failover_gap.threading.Event()
    stop.set()
    with pytest.raises(RuntimeError, match="stopped before its lab was created"):
        with turns.turn(1, stop):
            pass
