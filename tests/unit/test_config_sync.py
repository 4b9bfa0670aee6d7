"""Config sync on one node, against a real Mercurial repository and haproxy -c."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from ansible_collections.floatip.ha.plugins.module_utils import config_sync as cs

# hg and haproxy are host packages of lab/host-setup.sh.
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"

GOOD = """\
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s

listen probe
    bind 127.0.0.1:18080
    http-request return status 200 content-type text/plain string "{marker}"
"""
BAD = GOOD + "    no-such-keyword here\n"
PER_NODE = "listen own\n    bind 127.0.0.1:18081\n    http-request return status 200 content-type text/plain string {node}\n"


def hg(repo: Path, *args: str) -> str:
    done = subprocess.run(["hg", "-R", str(repo), *args], capture_output=True, text=True, check=True,
                          env={**os.environ, "HGPLAIN": "1", "HGUSER": "Ada Operator <ada@example.org>"})
    return done.stdout


def commit(work: Path, files: dict, message: str) -> str:
    for name, text in files.items():
        path = work / name
        if text is None:
            path.unlink()
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    hg(work, "addremove", "-q")
    hg(work, "commit", "-m", message)
    return hg(work, "log", "-r", ".", "-T", "{node}")


@pytest.fixture
def cluster(tmp_path: Path):
    """A central repository (its working copy stands for an operator's clone)
    and one node's sync of it."""
    central = tmp_path / "central"
    subprocess.run(["hg", "init", str(central)], check=True)
    state = tmp_path / "state"
    state.mkdir()
    live = tmp_path / "etc" / "haproxy.cfg"
    live.parent.mkdir()
    reloads = tmp_path / "reloads"
    config = {
        "node": "n1",
        "source": str(central),
        "ssh": "ssh",
        "state_dir": str(state),
        "status": str(state / "status.json"),
        "health_wait": 0,
        "targets": [{
            "name": "haproxy",
            "live": str(live),
            "check": [HAPROXY, "-c", "-f", "{file}"],
            "reload": ["sh", "-c", f"echo reload >> {reloads}"],
            "health": [],
        }],
    }

    class Cluster:
        pass

    c = Cluster()
    c.central, c.live, c.config, c.reloads = central, live, config, reloads
    c.syncer = lambda: cs.Syncer(config, sleep=lambda _s: None)
    c.reload_count = lambda: len(reloads.read_text().split()) if reloads.exists() else 0
    return c


def test_a_shared_file_and_a_nodes_own_are_joined_in_name_order(tmp_path: Path) -> None:
    (tmp_path / "haproxy" / "nodes" / "n1").mkdir(parents=True)
    (tmp_path / "haproxy" / "10-common.cfg").write_text("global\n")
    (tmp_path / "haproxy" / "20-backends.cfg").write_text("shared backends")
    (tmp_path / "haproxy" / "nodes" / "n1" / "20-backends.cfg").write_text("n1 backends\n")
    (tmp_path / "haproxy" / "nodes" / "n1" / "30-extra.cfg").write_text("n1 extra\n")
    text, sources = cs.assemble(str(tmp_path), "haproxy", "n1")
    assert text == "global\nn1 backends\nn1 extra\n"
    assert sources == ["haproxy/10-common.cfg", "haproxy/nodes/n1/20-backends.cfg", "haproxy/nodes/n1/30-extra.cfg"]
    text, _sources = cs.assemble(str(tmp_path), "haproxy", "n2")
    assert text == "global\nshared backends\n"


def test_a_revision_without_the_target_is_an_error_naming_the_paths(tmp_path: Path) -> None:
    with pytest.raises(cs.SyncError, match=r"no file under keepalived/ or keepalived/nodes/n1/"):
        cs.assemble(str(tmp_path), "keepalived", "n1")


def test_the_seed_shares_what_is_equal_and_splits_what_differs() -> None:
    rendered = {"n1": {"haproxy": "same\n", "keepalived": "prio 100\n"},
                "n2": {"haproxy": "same\n", "keepalived": "prio 90\n"}}
    files = cs.split_seed(rendered, {"haproxy": "haproxy.cfg", "keepalived": "keepalived.conf"})
    assert files == {"haproxy/haproxy.cfg": "same\n",
                     "keepalived/nodes/n1/keepalived.conf": "prio 100\n",
                     "keepalived/nodes/n2/keepalived.conf": "prio 90\n"}
    with pytest.raises(cs.SyncError, match="keepalived: no configuration read from n2"):
        cs.split_seed({"n1": {"keepalived": "x"}, "n2": {}}, {"keepalived": "keepalived.conf"})


def test_backends_with_a_server_up_count_backup_servers() -> None:
    stat = (
        "# pxname,svname,status,\n"
        "fe_web,FRONTEND,OPEN,\n"
        "be_web,n1,DOWN,\n"
        "be_web,n2,UP,\n"
        "be_web,BACKEND,UP,\n"
        "be_mail,n1,DOWN 1/2,\n"
        "be_mail,BACKEND,DOWN,\n"
        "be_imap,n1,UP 1/3,\n"
    )
    assert cs.backends_up(stat) == {"be_web", "be_imap"}
    assert cs.lost_backends({"be_web", "be_mail"}, {"be_web"}) == ["be_mail"]


def test_a_node_key_may_pull_only_from_the_one_repository(tmp_path: Path) -> None:
    repo = str(tmp_path / "config")
    assert cs.serve_argv(f"hg -R '{repo}' serve --stdio", repo, "/home/x") == ["hg", "-R", repo, "serve", "--stdio"]
    # A path relative to the account's home, as ssh://host/config sends it.
    assert cs.serve_argv("hg -R config serve --stdio", repo, str(tmp_path))[2] == repo
    assert cs.serve_argv("floatip-wait abc", repo, "/") == ["floatip-wait", "abc"]
    with pytest.raises(cs.SyncError, match="only .* is served here"):
        cs.serve_argv("hg -R /etc serve --stdio", repo, "/")
    with pytest.raises(cs.SyncError, match="refused: 'sh -c id'"):
        cs.serve_argv("sh -c id", repo, "/")


def test_a_node_key_cannot_push_and_a_committers_push_is_logged(cluster, tmp_path: Path) -> None:
    """Through hg's ssh transport, with a stand-in ssh that runs the forced
    command here, and the repository's hooks."""
    commit(cluster.central, {"haproxy/haproxy.cfg": GOOD.format(marker="one")}, "seed")
    (cluster.central / ".hg" / "hgrc").write_text(cs.repository_hgrc())
    fake_ssh = tmp_path / "fake-ssh"
    fake_ssh.write_text(
        "#!/bin/sh\n# fake-ssh [options] host command: run the forced command with the command asked\n"
        "while [ $# -gt 1 ]; do case $1 in -*) shift;; *) break;; esac; done\nshift\n"
        f"SSH_ORIGINAL_COMMAND=\"$*\" exec python3 {cs.__file__} serve --repository {cluster.central}"
        " ${PUSHER:+--pusher $PUSHER}\n")
    fake_ssh.chmod(0o755)
    work = tmp_path / "work"
    url = f"ssh://node@repo/{cluster.central}"
    subprocess.run(["hg", "clone", "-q", "--config", f"ui.ssh={fake_ssh}", url, str(work)], check=True)
    commit(work, {"haproxy/extra.cfg": "# more\n"}, "more")
    pushed = subprocess.run(["hg", "-R", str(work), "push", "--config", f"ui.ssh={fake_ssh}", url],
                            capture_output=True, text=True, check=False)
    assert pushed.returncode != 0 and "may pull, not push" in pushed.stdout + pushed.stderr
    pushed = subprocess.run(["hg", "-R", str(work), "push", "--config", f"ui.ssh={fake_ssh}", url],
                            capture_output=True, text=True, check=False, env={**os.environ, "PUSHER": "ada"})
    assert pushed.returncode == 0, pushed.stderr
    (line,) = (cluster.central / ".hg" / "floatip-pushlog").read_text().splitlines()
    assert line.split()[1:3] == ["ada", hg(work, "log", "-r", ".", "-T", "{node}")]


def test_wait_returns_the_new_tip_once_a_push_lands(cluster) -> None:
    first = commit(cluster.central, {"haproxy/haproxy.cfg": GOOD.format(marker="one")}, "one")
    polls = []

    def sleep(_seconds: float) -> None:
        polls.append(1)
        if len(polls) == 3:
            commit(cluster.central, {"haproxy/haproxy.cfg": GOOD.format(marker="two")}, "two")

    tip = cs.wait_for_change(str(cluster.central), first, seconds=60, sleep=sleep)
    assert tip != first and tip == hg(cluster.central, "log", "-r", "tip", "-T", "{node}")
    assert len(polls) == 3
    # Nothing new: the unchanged tip after the wait.
    clock = iter(range(0, 1000, 10))
    assert cs.wait_for_change(str(cluster.central), tip, seconds=30, sleep=lambda _s: None, clock=lambda: next(clock)) == tip


def test_wait_sees_a_push_that_lands_while_it_reads_the_tip(cluster, monkeypatch) -> None:
    first = commit(cluster.central, {"haproxy/haproxy.cfg": GOOD.format(marker="one")}, "one")
    read_tip = cs.repository_tip
    calls = []

    def tip_while_a_push_lands(repository: str) -> str:
        calls.append(1)
        if len(calls) == 1:
            before = read_tip(repository)
            commit(cluster.central, {"haproxy/haproxy.cfg": GOOD.format(marker="two")}, "two")
            return before
        return read_tip(repository)

    monkeypatch.setattr(cs, "repository_tip", tip_while_a_push_lands)
    clock = iter(range(0, 1000))
    tip = cs.wait_for_change(str(cluster.central), first, seconds=30, sleep=lambda _s: None, clock=lambda: next(clock))
    assert tip != first and len(calls) == 2


def test_a_good_revision_goes_live_and_is_recorded(cluster) -> None:
    revision = commit(cluster.central, {"haproxy/haproxy.cfg": GOOD.format(marker="one"),
                                        "haproxy/nodes/n1/zz-own.cfg": PER_NODE.format(node="n1"),
                                        "haproxy/nodes/n2/zz-own.cfg": PER_NODE.format(node="n2")}, "one")
    status = cluster.syncer().sync()
    assert status["error"] is None and status["revision"] == revision
    assert status["author"] == "Ada Operator <ada@example.org>"
    assert cluster.live.read_text() == GOOD.format(marker="one") + PER_NODE.format(node="n1")
    assert status["targets"]["haproxy"]["sources"] == ["haproxy/haproxy.cfg", "haproxy/nodes/n1/zz-own.cfg"]
    assert cluster.reload_count() == 1
    assert json.loads(Path(cluster.config["status"]).read_text())["revision"] == revision
    # Again: nothing new, nothing reloaded.
    assert cluster.syncer().sync()["revision"] == revision and cluster.reload_count() == 1
    # A revision that changes only another node's file reloads nothing here.
    other = commit(cluster.central, {"haproxy/nodes/n2/zz-own.cfg": PER_NODE.format(node="n2 again")}, "n2 only")
    assert cluster.syncer().sync()["revision"] == other and cluster.reload_count() == 1


def test_a_revision_that_fails_the_check_is_refused_and_nothing_changes(cluster) -> None:
    good = commit(cluster.central, {"haproxy/haproxy.cfg": GOOD.format(marker="one")}, "good")
    cluster.syncer().sync()
    bad = commit(cluster.central, {"haproxy/haproxy.cfg": BAD.format(marker="two")}, "typo")
    status = cluster.syncer().sync()
    assert status["revision"] == good
    assert status["refused"]["revision"] == bad and status["refused"]["target"] == "haproxy"
    assert "no-such-keyword" in status["refused"]["reason"]
    assert cluster.live.read_text() == GOOD.format(marker="one") and cluster.reload_count() == 1
    # The refused revision is not tried again by every sync, only when asked.
    assert cluster.syncer().sync()["refused"]["at"] == status["refused"]["at"]
    fixed = commit(cluster.central, {"haproxy/haproxy.cfg": GOOD.format(marker="three")}, "fix")
    status = cluster.syncer().sync()
    assert status["revision"] == fixed and status["refused"] is None


def test_an_unhealthy_revision_is_rolled_back(cluster, tmp_path: Path) -> None:
    good = commit(cluster.central, {"haproxy/haproxy.cfg": GOOD.format(marker="one")}, "good")
    cluster.syncer().sync()
    healthy = tmp_path / "healthy"
    healthy.write_text("")
    cluster.config["targets"][0]["health"] = [["sh", "-c", f"grep -q one {cluster.live} && test -e {healthy}"]]
    sick = commit(cluster.central, {"haproxy/haproxy.cfg": GOOD.format(marker="two")}, "sick")
    status = cluster.syncer().sync()
    assert status["revision"] == good
    assert status["rolled_back"]["revision"] == sick and "health check" in status["rolled_back"]["reason"]
    assert cluster.live.read_text() == GOOD.format(marker="one")
    # Reloaded with the new file, then with the old one again.
    assert cluster.reload_count() == 3


def test_a_failed_reload_is_rolled_back(cluster) -> None:
    commit(cluster.central, {"haproxy/haproxy.cfg": GOOD.format(marker="one")}, "good")
    cluster.syncer().sync()
    cluster.config["targets"][0]["reload"] = ["false"]
    commit(cluster.central, {"haproxy/haproxy.cfg": GOOD.format(marker="two")}, "two")
    status = cluster.syncer().sync()
    assert "false failed" in status["rolled_back"]["reason"]
    assert cluster.live.read_text() == GOOD.format(marker="one")


def test_an_edit_on_the_node_is_kept_and_reported(cluster) -> None:
    commit(cluster.central, {"haproxy/haproxy.cfg": GOOD.format(marker="one")}, "one")
    cluster.syncer().sync()
    cluster.live.write_text(GOOD.format(marker="hand edit"))
    two = commit(cluster.central, {"haproxy/haproxy.cfg": GOOD.format(marker="two")}, "two")
    status = cluster.syncer().sync()
    assert status["revision"] == two
    (edit,) = status["local_edits"]
    assert edit["replaced_by"] == two and edit["file"] == str(cluster.live)
    assert Path(edit["kept_as"]).read_text() == GOOD.format(marker="hand edit")
    assert oct(Path(edit["kept_as"]).stat().st_mode & 0o777) == "0o600"


def test_the_live_file_keeps_its_owner_and_mode(cluster) -> None:
    cluster.live.write_text("old\n")
    cluster.live.chmod(0o640)
    commit(cluster.central, {"haproxy/haproxy.cfg": GOOD.format(marker="one")}, "one")
    status = cluster.syncer().sync()
    assert oct(cluster.live.stat().st_mode & 0o777) == "0o640"
    # The file no sync had written is kept too.
    assert Path(status["local_edits"][0]["kept_as"]).read_text() == "old\n"


def test_an_unreachable_repository_is_reported_and_nothing_changes(cluster) -> None:
    commit(cluster.central, {"haproxy/haproxy.cfg": GOOD.format(marker="one")}, "one")
    cluster.syncer().sync()
    shutil.rmtree(cluster.central)
    status = cluster.syncer().sync()
    assert status["error"].startswith("hg pull failed")
    assert cluster.live.read_text() == GOOD.format(marker="one")


def test_two_syncs_never_overlap(cluster) -> None:
    commit(cluster.central, {"haproxy/haproxy.cfg": GOOD.format(marker="one")}, "one")
    with open(Path(cluster.config["state_dir"]) / "sync.lock", "w", encoding="utf-8") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        clock = iter(range(0, 10000, 30))
        syncer = cs.Syncer(cluster.config, sleep=lambda _s: None, clock=lambda: next(clock))
        with pytest.raises(cs.SyncError, match="another sync held the lock"):
            syncer.sync()
    assert not cluster.live.exists()
