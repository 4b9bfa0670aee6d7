"""Config sync on one node, against a real Mercurial repository and haproxy -c."""

from __future__ import annotations

import fcntl
import grp
import json
import os
import pwd
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from config_sync_daemon import PROGRAM, cs

# The controller's part (the seed filter's layout) stays in the collection.
from ansible_collections.floatip.ha.plugins.module_utils import config_sync as seed

# hg and haproxy are host packages of lab/host-setup.sh.
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
ADMIN_SOCKET = "/run/haproxy/admin.sock mode 660 level admin user root group haproxy expose-fd listeners"

GOOD = f"""\
global
    chroot /var/lib/haproxy
    user haproxy
    group haproxy
    stats socket {ADMIN_SOCKET}

defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s

listen probe
    bind 127.0.0.1:18080
    http-request return status 200 content-type text/plain string "{{marker}}"
"""
BAD = GOOD + "    no-such-keyword here\n"
PER_NODE = "listen own\n    bind 127.0.0.1:18081\n    http-request return status 200 content-type text/plain string {node}\n"
# What the live file gets: the owner, group and mode the role sets.
OWNER = pwd.getpwuid(os.getuid()).pw_name


def _group() -> str:
    """haproxy, as on the nodes, where the tests may give a file to it."""
    try:
        if os.getuid() == 0:
            return grp.getgrnam("haproxy").gr_name
    except KeyError:
        pass
    return grp.getgrgid(os.getgid()).gr_name


GROUP = _group()


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
            "owner": OWNER,
            "group": GROUP,
            "mode": "0640",
            "check": [HAPROXY, "-c", "-f", "{file}"],
            "reload": ["sh", "-c", f"echo reload >> {reloads}"],
            "health": [],
            "policy": {"run_as": {"user": "haproxy", "group": "haproxy", "chroot": "/var/lib/haproxy"},
                       "stats_sockets": [ADMIN_SOCKET], "file_dirs": [], "tls_dirs": []},
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
    assembled = cs.assemble(str(tmp_path), "haproxy", "n1")
    assert assembled.text == "global\nn1 backends\nn1 extra\n"
    assert assembled.sources == ["haproxy/10-common.cfg", "haproxy/nodes/n1/20-backends.cfg",
                                 "haproxy/nodes/n1/30-extra.cfg"]
    assert assembled.where(3) == "haproxy/nodes/n1/30-extra.cfg line 1"
    assert cs.assemble(str(tmp_path), "haproxy", "n2").text == "global\nshared backends\n"


def test_a_revision_without_the_target_is_an_error_naming_the_paths(tmp_path: Path) -> None:
    with pytest.raises(cs.SyncError, match=r"no file under keepalived/ or keepalived/nodes/n1/"):
        cs.assemble(str(tmp_path), "keepalived", "n1")
    (tmp_path / "haproxy" / "nodes").mkdir(parents=True)
    (tmp_path / "haproxy" / "nodes" / "n1").write_text("not a directory\n")
    with pytest.raises(cs.Refused, match=r"^haproxy/nodes/n1 is a file: it must be a directory of haproxy's files"):
        cs.assemble(str(tmp_path), "haproxy", "n1")


def test_the_seed_shares_what_is_equal_and_splits_what_differs(tmp_path: Path) -> None:
    """The seed, laid out on the controller, is what the program assembles
    on each node again."""
    rendered = {"n1": {"haproxy": "same\n", "keepalived": "prio 100\n"},
                "n2": {"haproxy": "same\n", "keepalived": "prio 90\n"}}
    files = seed.split_seed(rendered, {"haproxy": "haproxy.cfg", "keepalived": "keepalived.conf"})
    assert files == {"haproxy/haproxy.cfg": "same\n",
                     "keepalived/nodes/n1/keepalived.conf": "prio 100\n",
                     "keepalived/nodes/n2/keepalived.conf": "prio 90\n"}
    for path, text in files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    for node, texts in rendered.items():
        for target, text in texts.items():
            assert cs.assemble(str(tmp_path), target, node).text == text
    with pytest.raises(seed.SyncError, match="keepalived: no configuration read from n2"):
        seed.split_seed({"n1": {"keepalived": "x"}, "n2": {}}, {"keepalived": "keepalived.conf"})


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
    assert cs.serve_argv(f"floatip-wait {'ab' * 20}", repo, "/") == ["floatip-wait", "ab" * 20]
    assert cs.serve_argv("floatip-wait none", repo, "/") == ["floatip-wait", "none"]
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


def test_the_live_file_gets_the_owner_and_mode_its_target_needs(cluster) -> None:
    """Not those of the file it replaces: haproxy.cfg holds password hashes."""
    cluster.live.write_text("old\n")
    cluster.live.chmod(0o644)
    commit(cluster.central, {"haproxy/haproxy.cfg": GOOD.format(marker="one")}, "one")
    status = cluster.syncer().sync()
    assert status["revision"] is not None
    info = cluster.live.stat()
    assert stat.S_IMODE(info.st_mode) == 0o640 and grp.getgrgid(info.st_gid).gr_name == GROUP
    assert pwd.getpwuid(info.st_uid).pw_name == OWNER
    # The file no sync had written is kept too, private.
    kept = Path(status["local_edits"][0]["kept_as"])
    assert kept.read_text() == "old\n" and stat.S_IMODE(kept.stat().st_mode) == 0o600
    # The status names revisions and quotes the checks: root's only.
    assert stat.S_IMODE(Path(cluster.config["status"]).stat().st_mode) == 0o600


def test_a_rolled_back_file_gets_its_targets_mode_too(cluster) -> None:
    commit(cluster.central, {"haproxy/haproxy.cfg": GOOD.format(marker="one")}, "one")
    cluster.syncer().sync()
    cluster.live.chmod(0o666)
    cluster.config["targets"][0]["reload"] = ["false"]
    commit(cluster.central, {"haproxy/haproxy.cfg": GOOD.format(marker="two")}, "two")
    assert cluster.syncer().sync()["rolled_back"] is not None
    assert cluster.live.read_text() == GOOD.format(marker="one")
    assert stat.S_IMODE(cluster.live.stat().st_mode) == 0o640


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


# -- what a revision may hold

def test_a_symlink_in_the_revision_is_refused_before_it_is_read(cluster, tmp_path: Path) -> None:
    """hg archive writes a committed symbolic link as one: followed, the node
    would read its target as root and quote it in the status."""
    commit(cluster.central, {"haproxy/haproxy.cfg": GOOD.format(marker="one")}, "one")
    good = cluster.syncer().sync()["revision"]
    secret = tmp_path / "secret"
    secret.write_text("root-only-marker-7f3a\n")
    for link, points_to in (("haproxy/zz-extra.cfg", secret), ("haproxy/nodes/n1", secret.parent)):
        (cluster.central / link).parent.mkdir(parents=True, exist_ok=True)
        (cluster.central / link).symlink_to(points_to)
        linked = commit(cluster.central, {}, f"a link at {link}")
        status = cluster.syncer().sync()
        assert status["revision"] == good
        assert status["refused"]["revision"] == linked and status["refused"]["target"] == "haproxy"
        assert status["refused"]["reason"] == f"{link} is a symbolic link: a revision may hold regular files only"
        assert "root-only-marker" not in Path(cluster.config["status"]).read_text()
        assert cluster.live.read_text() == GOOD.format(marker="one") and cluster.reload_count() == 1
        (cluster.central / link).unlink()
        hg(cluster.central, "addremove", "-q")


def test_a_fifo_or_a_link_is_refused_without_being_opened(tmp_path: Path) -> None:
    """hg never exports one, but the reading refuses it on its own: a FIFO
    opened for reading would hang the sync."""
    (tmp_path / "haproxy").mkdir()
    os.mkfifo(tmp_path / "haproxy" / "pipe.cfg")
    with pytest.raises(cs.Refused, match=r"^haproxy/pipe\.cfg is not a regular file"):
        cs.check_tree(str(tmp_path))
    with pytest.raises(cs.Refused, match=r"^haproxy/pipe\.cfg is not a regular file"):
        cs.assemble(str(tmp_path), "haproxy", "n1")
    (tmp_path / "haproxy" / "pipe.cfg").unlink()
    (tmp_path / "haproxy" / "link.cfg").symlink_to("/etc/hostname")
    with pytest.raises(cs.Refused, match=r"^haproxy/link\.cfg cannot be read as a regular file"):
        cs.assemble(str(tmp_path), "haproxy", "n1")


def test_a_file_that_is_not_text_is_refused(cluster) -> None:
    commit(cluster.central, {"haproxy/haproxy.cfg": GOOD.format(marker="one")}, "one")
    cluster.syncer().sync()
    (cluster.central / "haproxy" / "zz.cfg").write_bytes(b"listen x\n    bind :1\xff\n")
    commit(cluster.central, {}, "binary")
    assert "haproxy/zz.cfg is not UTF-8 text" in cluster.syncer().sync()["refused"]["reason"]


def test_a_directive_that_runs_code_is_refused_before_anything_reads_it(cluster, tmp_path: Path) -> None:
    """Through the whole sync: haproxy -c would run the Lua file, as root;
    the policy refuses first, so nothing runs, nothing goes live, and the
    status says which line of which file."""
    commit(cluster.central, {"haproxy/haproxy.cfg": GOOD.format(marker="one")}, "one")
    good = cluster.syncer().sync()["revision"]
    mark = tmp_path / "lua-ran"
    (tmp_path / "mark.lua").write_text(f'local f = io.open("{mark}", "w"); f:write("ran"); f:close()\n')
    hostile = {
        f"    lua-load {tmp_path}/mark.lua\n": "Lua",
        "    stats socket ipv4@0.0.0.0:9999 level admin\n": "runtime API socket other than the haproxy role's own",
        "    insecure-fork-wanted\n": "lets HAProxy start programs",
    }
    for line, says in hostile.items():
        bad = commit(cluster.central, {"haproxy/haproxy.cfg": GOOD.format(marker="two").replace(
            "    group haproxy\n", "    group haproxy\n" + line)}, "hostile")
        status = cluster.syncer().sync()
        assert status["revision"] == good and status["refused"]["revision"] == bad
        assert status["refused"]["target"] == "haproxy" and status["refused"]["author"] == "Ada Operator <ada@example.org>"
        assert status["refused"]["reason"].startswith(f"haproxy/haproxy.cfg line 5: '{line.strip()}' ")
        assert says in status["refused"]["reason"]
        assert cluster.live.read_text() == GOOD.format(marker="one") and cluster.reload_count() == 1
    assert not mark.exists()
    # A program section, added in a file of its own.
    bad = commit(cluster.central, {"haproxy/haproxy.cfg": GOOD.format(marker="one"),
                                   "haproxy/zz-run.cfg": "program evil\n    command /bin/sh -c id\n"}, "program")
    status = cluster.syncer().sync()
    assert status["refused"]["revision"] == bad
    assert status["refused"]["reason"].startswith("haproxy/zz-run.cfg line 1: 'program evil' section starts a program")


# -- a sync stopped on the way

# Records what it reloads; killed the sync that reloads revision "two".
KILLING_RELOAD = 'grep -o "marker-[a-z]*" {live} >> {reloads}; if grep -q marker-two {live}; then kill -KILL $PPID; sleep 5; fi'


def _sync_killed_at_reload(cluster) -> dict:
    """Run the program as the service does, with a reload that kills it: the
    live file is written, the health watch never ends."""
    config = json.loads(json.dumps(cluster.config))
    config["targets"][0]["reload"] = ["sh", "-c", KILLING_RELOAD.format(live=cluster.live, reloads=cluster.reloads)]
    path = Path(cluster.config["state_dir"]) / "killing.json"
    path.write_text(json.dumps(config))
    done = subprocess.run([sys.executable, str(PROGRAM), "sync", "--config", str(path)], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == -signal.SIGKILL, done.stderr
    return cs.load_status(cluster.config["status"], "n1")


def _reloaded_markers(cluster) -> list[str]:
    return cluster.reloads.read_text().split()


def test_a_sync_killed_before_its_watch_ended_is_checked_again(cluster) -> None:
    cluster.config["targets"][0]["reload"] = ["sh", "-c", f'grep -o "marker-[a-z]*" {cluster.live} >> {cluster.reloads}']
    watched = Path(cluster.config["state_dir"]) / "watched"
    cluster.config["health_commands"] = [["sh", "-c", f'grep -o "marker-[a-z]*" {cluster.live} >> {watched}']]
    one = commit(cluster.central, {"haproxy/haproxy.cfg": GOOD.format(marker="marker-one")}, "one")
    assert cluster.syncer().sync()["revision"] == one
    two = commit(cluster.central, {"haproxy/haproxy.cfg": GOOD.format(marker="marker-two")}, "two")
    stopped = _sync_killed_at_reload(cluster)
    # Recorded as pending before the live file was written, not as served.
    assert stopped["revision"] == one and stopped["pending"]["revision"] == two
    assert cluster.live.read_text() == GOOD.format(marker="marker-two")
    status = cluster.syncer().sync()
    # What served before went back and was reloaded; then the revision was
    # applied again from the start: reloaded and watched.
    assert _reloaded_markers(cluster) == ["marker-one", "marker-two", "marker-one", "marker-two"]
    assert watched.read_text().split() == ["marker-one", "marker-two"]
    assert status["revision"] == two and status["pending"] is None and status["rolled_back"] is None
    assert status["interrupted"]["revision"] == two and status["interrupted"]["attempt"] == 1
    assert status["local_edits"] == []


def test_a_revision_whose_sync_is_killed_twice_is_rolled_back(cluster) -> None:
    cluster.config["targets"][0]["reload"] = ["sh", "-c", f'grep -o "marker-[a-z]*" {cluster.live} >> {cluster.reloads}']
    one = commit(cluster.central, {"haproxy/haproxy.cfg": GOOD.format(marker="marker-one")}, "one")
    cluster.syncer().sync()
    two = commit(cluster.central, {"haproxy/haproxy.cfg": GOOD.format(marker="marker-two")}, "two")
    _sync_killed_at_reload(cluster)
    # The next sync puts back, then applies again, and is killed again.
    second = _sync_killed_at_reload(cluster)
    assert second["pending"]["revision"] == two and second["pending"]["attempt"] == 2
    assert second["interrupted"]["revision"] == two
    status = cluster.syncer().sync()
    assert _reloaded_markers(cluster) == ["marker-one", "marker-two", "marker-one", "marker-two", "marker-one"]
    assert status["revision"] == one and status["pending"] is None
    assert status["rolled_back"]["revision"] == two and "stopped 2 times" in status["rolled_back"]["reason"]
    assert cluster.live.read_text() == GOOD.format(marker="marker-one")
    assert _reloaded_markers(cluster)[-1] == "marker-one"
    # Not tried again by every sync; a newer push is.
    assert cluster.syncer().sync()["rolled_back"]["at"] == status["rolled_back"]["at"]
    three = commit(cluster.central, {"haproxy/haproxy.cfg": GOOD.format(marker="marker-three")}, "three")
    assert cluster.syncer().sync()["revision"] == three


# -- the repository host's forced command

def _serve(repository: Path, command: str, *extra: str, **popen) -> subprocess.Popen:
    env = {**os.environ, "SSH_ORIGINAL_COMMAND": command}
    return subprocess.Popen([sys.executable, str(PROGRAM), "serve", "--repository", str(repository), *extra],
                            env=env, text=True, stderr=subprocess.PIPE, **popen)


@pytest.mark.parametrize("command", ["hg -R 'config serve --stdio", 'floatip-wait "abc', "floatip-wait a\\",
                                     "floatip-wait $(id)", "floatip-wait abc", "hg -R config serve --stdio\nid",
                                     "sh -c id", ""])
def test_a_command_the_key_may_not_run_gets_one_line(cluster, command: str) -> None:
    done = _serve(cluster.central, command, stdout=subprocess.PIPE)
    out, err = done.communicate(timeout=60)
    assert done.returncode == 1 and out == ""
    assert err.startswith("floatip: refused: ") and err.count("\n") == 1, err
    assert "Traceback" not in err


def _waiting(cluster, node: str) -> subprocess.Popen:
    tip = hg(cluster.central, "log", "-r", "tip", "-T", "{node}")
    return _serve(cluster.central, f"floatip-wait {tip}", "--node", node, "--wait-slots", "2", stdout=subprocess.PIPE)


def _held(cluster, node: str, count: int) -> None:
    """Until ``count`` of the node's slots are locked by waits."""
    deadline = time.monotonic() + 60
    while True:
        held = 0
        for index in range(2):
            path = cluster.central / ".hg" / "floatip-wait" / f"node-{node}.{index}"
            if path.exists():
                with open(path, encoding="utf-8") as handle:
                    try:
                        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except BlockingIOError:
                        held += 1
        if held == count:
            return
        assert time.monotonic() < deadline, f"{held} of node {node}'s waits held, not {count}"
        time.sleep(0.05)


def test_each_key_holds_a_few_waits_and_no_more(cluster) -> None:
    commit(cluster.central, {"haproxy/haproxy.cfg": GOOD.format(marker="one")}, "one")
    waits = [_waiting(cluster, "n1"), _waiting(cluster, "n1")]
    try:
        _held(cluster, "n1", 2)
        started = time.monotonic()
        busy = _waiting(cluster, "n1")
        out, err = busy.communicate(timeout=30)
        assert busy.returncode == 1 and out == "" and time.monotonic() - started < 20
        assert err == "floatip: busy: this key already holds 2 waits; try again later\n"
        # Another node's key has waits of its own.
        other = _waiting(cluster, "n2")
        _held(cluster, "n2", 1)
        # A push answers every wait with the new tip.
        tip = commit(cluster.central, {"haproxy/haproxy.cfg": GOOD.format(marker="two")}, "two")
        for wait in [*waits, other]:
            out, _err = wait.communicate(timeout=60)
            assert wait.returncode == 0 and out == tip + "\n"
    finally:
        for wait in waits:
            wait.kill()


def test_a_wait_whose_watcher_is_gone_frees_its_slot(cluster) -> None:
    """A stopped watcher's ssh session closes the wait's output: the wait
    ends then, not WAIT_SECONDS later."""
    commit(cluster.central, {"haproxy/haproxy.cfg": GOOD.format(marker="one")}, "one")
    wait = _waiting(cluster, "n1")
    _held(cluster, "n1", 1)
    started = time.monotonic()
    wait.stdout.close()
    assert wait.wait(timeout=30) == 0
    assert time.monotonic() - started < cs.WAIT_SECONDS / 2
    _held(cluster, "n1", 0)
