# Copyright: floatip.ha contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to the floatip.ha collection: the interface may change at any time.
"""Config sync: every node serves the configuration of a central Mercurial repository.

The config_sync role copies this file to the repository host and to every
node as ``/usr/local/lib/floatip/config_sync.py`` and runs it there; it
needs the standard library, ``hg`` and the daemons' own checks, nothing of
Ansible. Three commands:

``serve`` (repository host, the forced command of every key that may reach
    the repository over ssh): lets ``hg serve --stdio`` through, read-only for
    a node's key, read-write for a committer's key (the repository's hooks,
    ``repository_hgrc``, refuse a push without a committer's name and log
    each push with it), and answers ``floatip-wait REV``, which returns as soon as the
    repository's tip is no longer REV: a node learns of a push within a
    fraction of a second, without polling over ssh.
``sync`` (node): pulls once and applies the newest revision of the default
    branch, guarded (below). ``watch`` does the same, then waits for the next
    push and again, for ever: the node's floatip-config-sync service.
``status`` (node): prints the status file.

The repository holds one directory per target (``haproxy/``, optionally
``keepalived/``). A node serves, for each target, the files of ``<target>/``
and of ``<target>/nodes/<node>/`` (a node's file replaces the shared one of
the same name), joined in name order into the target's one live file. So a
change for every node is made once, in a shared file, and what differs per
node (keepalived priorities, HAProxy's preferred local server) lives in
that node's files, on the one branch.

A sync is guarded: the revision is exported to a staging directory, each
target's file is checked with its daemon's own check (``haproxy -c``,
``keepalived --config-test``) and a revision that fails is refused whole:
nothing goes live, the status names the revision and the check's words.
A revision that passes is made live target by target (only targets whose
file changes are reloaded) and then watched: a reload that fails, a health
command that fails, or an HAProxy backend that had a server up before and
has none after, rolls every changed target back to what served before.
A live file that differs from what the last sync wrote (an edit on the node)
is kept in ``local-edits/`` and reported, never thrown away silently. One
sync at a time (a lock); the status is a JSON file that Ansible reads as the
local fact ``floatip_config_sync``.
"""

from __future__ import annotations

import argparse
import csv
import fcntl
import hashlib
import io
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time

# The status file's keys, for the reader: see ``new_status``.
STATUS_FORMAT = 1
# How long ``floatip-wait`` holds before it answers "unchanged"; below the
# ssh client's ServerAliveInterval * ServerAliveCountMax of the watcher.
WAIT_SECONDS = 50.0
WAIT_POLL = 0.2
LOCK_TIMEOUT = 120.0
CHECK_TIMEOUT = 60.0
OUTPUT_LIMIT = 600


class SyncError(Exception):
    """A problem that stops a sync; its message says what to look at."""


# ---------------------------------------------------------------- layout

def _files(directory: str) -> dict:
    """Regular files directly in ``directory`` by name (none if it is absent);
    hidden files are left out."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return {}
    return {
        name: os.path.join(directory, name)
        for name in names
        if not name.startswith(".") and os.path.isfile(os.path.join(directory, name))
    }


def assemble(tree: str, target: str, node: str) -> tuple:
    """The live file ``node`` serves for ``target`` from the exported tree,
    and the repository paths it was made of, in order."""
    shared = _files(os.path.join(tree, target))
    own = _files(os.path.join(tree, target, "nodes", node))
    names = sorted(set(shared) | set(own))
    if not names:
        raise SyncError(f"the revision has no file under {target}/ or {target}/nodes/{node}/")
    parts = []
    sources = []
    for name in names:
        path = own.get(name) or shared[name]
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        parts.append(text if text.endswith("\n") or not text else text + "\n")
        sources.append(os.path.relpath(path, tree))
    return "".join(parts), sources


def split_seed(rendered: dict, basenames: dict) -> dict:
    """Repository files that reproduce what every node serves now.

    ``rendered`` is ``{node: {target: text}}``, ``basenames`` ``{target:
    file name}``. A target whose text is the same on every node becomes one
    shared file; otherwise each node gets its own file under
    ``<target>/nodes/<node>/``."""
    files = {}
    targets = sorted({target for texts in rendered.values() for target in texts})
    for target in targets:
        texts = {node: texts[target] for node, texts in rendered.items() if target in texts}
        if len(texts) != len(rendered):
            missing = sorted(set(rendered) - set(texts))
            raise SyncError(f"{target}: no configuration read from {', '.join(missing)}")
        name = basenames[target]
        if len(set(texts.values())) == 1:
            files[f"{target}/{name}"] = next(iter(texts.values()))
        else:
            for node, text in texts.items():
                files[f"{target}/nodes/{node}/{name}"] = text
    return files


# ---------------------------------------------------------------- health

def backends_up(stat_csv: str) -> set:
    """Backends of ``show stat`` with at least one server UP (backup servers
    count: they serve when the local one is down)."""
    text = stat_csv.lstrip("# ")
    up = set()
    for row in csv.DictReader(io.StringIO(text)):
        if row.get("svname") in ("FRONTEND", "BACKEND", None):
            continue
        if (row.get("status") or "").startswith("UP"):
            up.add(row["pxname"])
    return up


def haproxy_stat(socket_path: str, timeout: float = 2.0) -> str:
    """``show stat`` read from HAProxy's runtime API socket."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(socket_path)
        sock.sendall(b"show stat\n")
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", "replace")


def lost_backends(before: set, after: set) -> list:
    return sorted(before - after)


# ---------------------------------------------------------------- status

def new_status(node: str) -> dict:
    return {
        "format": STATUS_FORMAT,
        "node": node,
        # The revision every target serves now, and when it went live.
        "revision": None,
        "applied_at": None,
        "targets": {},
        # The newest revision not served, and why.
        "refused": None,
        "rolled_back": None,
        # Live files edited on the node, kept before a sync replaced them.
        "local_edits": [],
        # The last sync's problem that was not the revision's (the
        # repository unreachable, ...), or None.
        "error": None,
        "checked_at": None,
    }


def load_status(path: str, node: str) -> dict:
    try:
        with open(path, encoding="utf-8") as handle:
            status = json.load(handle)
    except FileNotFoundError:
        return new_status(node)
    except ValueError as exc:
        raise SyncError(f"{path} is not JSON ({exc}); move it away to start afresh") from exc
    merged = new_status(node)
    merged.update(status)
    return merged


def write_atomic(path: str, text: str, like: str | None = None, mode: int = 0o644) -> None:
    """Replace ``path`` with ``text`` in one rename, with the owner and mode
    of ``like`` (the file replaced) when it exists."""
    directory = os.path.dirname(path) or "."
    fd, temporary = tempfile.mkstemp(prefix=".floatip-", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if like and os.path.exists(like):
            info = os.stat(like)
            os.chown(temporary, info.st_uid, info.st_gid)
            os.chmod(temporary, info.st_mode & 0o7777)
        else:
            os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def _read(path: str) -> str | None:
    """A live file's text, or None when there is none."""
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# ---------------------------------------------------------------- commands

def run(argv: list, timeout: float = CHECK_TIMEOUT, env: dict | None = None) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, check=False)
    except FileNotFoundError as exc:
        raise SyncError(f"{argv[0]} is not installed: {exc}") from exc
    except subprocess.TimeoutExpired as exc:
        raise SyncError(f"{' '.join(argv)} did not finish within {timeout:.0f} s") from exc


def said(done: subprocess.CompletedProcess) -> str:
    """What a command said, shortened for a status line."""
    text = " ".join((done.stderr + "\n" + done.stdout).split())
    return text[-OUTPUT_LIMIT:] or f"exit code {done.returncode}"


def expand(argv: list, **values: str) -> list:
    return [part.format(**values) for part in argv]


class Hg:
    """The node's private clone of the central repository (never edited)."""

    def __init__(self, source: str, clone: str, ssh: str) -> None:
        self.source = source
        self.clone = clone
        self.ssh = ssh

    def _hg(self, *args: str, timeout: float = CHECK_TIMEOUT) -> str:
        argv = ["hg", "--config", f"ui.ssh={self.ssh}", "--config", "ui.interactive=false", *args]
        done = run(argv, timeout=timeout, env={**os.environ, "HGPLAIN": "1"})
        if done.returncode != 0:
            raise SyncError(f"hg {args[0]} failed: {said(done)}")
        return done.stdout

    def pull(self) -> None:
        if os.path.isdir(os.path.join(self.clone, ".hg")):
            self._hg("pull", "--quiet", "-R", self.clone, self.source)
        else:
            self._hg("clone", "--quiet", "--noupdate", self.source, self.clone)

    def head(self) -> dict:
        """The newest revision of the default branch: node, author, summary."""
        out = self._hg("log", "-R", self.clone, "-r", "default", "-T", "{node}\\n{author}\\n{desc|firstline}\\n")
        node, author, summary = (out.split("\n") + ["", "", ""])[:3]
        return {"revision": node, "author": author, "summary": summary}

    def export(self, revision: str, directory: str) -> None:
        self._hg("archive", "-R", self.clone, "-r", revision, "--type", "files", "--no-decode", directory)


# ---------------------------------------------------------------- sync

class Syncer:
    """One node's sync, configured by the role's /etc/floatip/config-sync.json."""

    def __init__(self, config: dict, sleep=time.sleep, clock=time.monotonic) -> None:
        self.config = config
        self.node = config["node"]
        self.state_dir = config["state_dir"]
        self.status_path = config["status"]
        self.targets = config["targets"]
        self.health_wait = float(config.get("health_wait", 8))
        self.hg = Hg(config["source"], os.path.join(self.state_dir, "clone"), config["ssh"])
        self.sleep = sleep
        self.clock = clock

    def log(self, message: str) -> None:
        sys.stderr.write(f"floatip-config-sync: {message}\n")
        sys.stderr.flush()

    # -- the lock

    def locked(self):
        """The sync lock, held for the block; a second sync waits for it."""
        syncer = self

        class _Lock:
            def __enter__(self):
                self.handle = open(os.path.join(syncer.state_dir, "sync.lock"), "w", encoding="utf-8")
                deadline = syncer.clock() + LOCK_TIMEOUT
                while True:
                    try:
                        fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        return self
                    except BlockingIOError:
                        if syncer.clock() > deadline:
                            self.handle.close()
                            raise SyncError(f"another sync held the lock for over {LOCK_TIMEOUT:.0f} s") from None
                        syncer.sleep(0.2)

            def __exit__(self, *exc):
                self.handle.close()

        return _Lock()

    # -- one sync

    def sync(self, retry: bool = False) -> dict:
        """Pull and apply the newest revision; the status afterwards."""
        with self.locked():
            status = load_status(self.status_path, self.node)
            try:
                self._sync(status, retry)
                status["error"] = None
            except SyncError as exc:
                status["error"] = str(exc)
                self.log(str(exc))
            status["checked_at"] = _now()
            write_atomic(self.status_path, json.dumps(status, indent=2, sort_keys=True) + "\n")
            return status

    def _sync(self, status: dict, retry: bool) -> None:
        self.hg.pull()
        head = self.hg.head()
        revision = head["revision"]
        if revision == status["revision"]:
            return
        for kind in ("refused", "rolled_back"):
            if not retry and (status[kind] or {}).get("revision") == revision:
                return
        stage = tempfile.mkdtemp(prefix="stage-", dir=self.state_dir)
        try:
            self.hg.export(revision, os.path.join(stage, "tree"))
            wanted = {}
            for target in self.targets:
                try:
                    text, sources = assemble(os.path.join(stage, "tree"), target["name"], self.node)
                except SyncError as exc:
                    return self._refuse(status, head, target["name"], str(exc))
                if _read(target["live"]) == text:
                    # Serving it already: nothing to check, nothing to reload.
                    wanted[target["name"]] = (text, sources)
                    continue
                staged = os.path.join(stage, os.path.basename(target["live"]) + "." + target["name"])
                write_atomic(staged, text, mode=0o600)
                done = run(expand(target["check"], file=staged))
                if done.returncode != 0:
                    return self._refuse(status, head, target["name"], f"{' '.join(target['check'][:2])}: {said(done)}")
                wanted[target["name"]] = (text, sources)
            self._apply(status, head, wanted)
        finally:
            shutil.rmtree(stage, ignore_errors=True)

    def _refuse(self, status: dict, head: dict, target: str, why: str) -> None:
        status["refused"] = {**head, "target": target, "reason": why, "at": _now()}
        self.log(f"refused revision {head['revision'][:12]} ({head['author']}): {target}: {why}")

    def _keep_local_edit(self, status: dict, target: dict, live_text: str, revision: str) -> None:
        # What the last sync wrote is in the repository; anything else (an
        # edit, or a file no sync has written yet) is kept.
        if status["targets"].get(target["name"], {}).get("sha256") == sha256(live_text):
            return
        kept_dir = os.path.join(self.state_dir, "local-edits")
        os.makedirs(kept_dir, mode=0o700, exist_ok=True)
        kept = os.path.join(kept_dir, f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{os.path.basename(target['live'])}")
        write_atomic(kept, live_text, mode=0o600)
        status["local_edits"].append({"target": target["name"], "file": target["live"], "kept_as": kept,
                                      "replaced_by": revision, "at": _now()})
        self.log(f"{target['live']} was edited on this node; the edit is kept in {kept}")

    def _apply(self, status: dict, head: dict, wanted: dict) -> None:
        changed = []
        before_up = {}
        for target in self.targets:
            text, sources = wanted[target["name"]]
            live_text = _read(target["live"])
            if live_text == text:
                continue
            if live_text is not None:
                self._keep_local_edit(status, target, live_text, head["revision"])
            if target.get("haproxy_socket"):
                before_up[target["name"]] = self._backends_up(target)
            changed.append((target, live_text))
        for target, _old in changed:
            write_atomic(target["live"], wanted[target["name"]][0], like=target["live"])
        why = self._reload_and_watch([target for target, _old in changed], before_up)
        if why:
            for target, old in changed:
                if old is None:
                    os.unlink(target["live"])
                else:
                    write_atomic(target["live"], old, like=target["live"])
                run(target["reload"])
            status["rolled_back"] = {**head, "reason": why, "at": _now()}
            self.log(f"rolled back revision {head['revision'][:12]} ({head['author']}): {why}")
            return
        status["revision"] = head["revision"]
        status["author"] = head["author"]
        status["summary"] = head["summary"]
        status["applied_at"] = _now()
        status["refused"] = status["rolled_back"] = None
        for target in self.targets:
            text, sources = wanted[target["name"]]
            status["targets"][target["name"]] = {"file": target["live"], "sha256": sha256(text), "sources": sources}
        self.log(f"serving revision {head['revision'][:12]} ({head['author']}: {head['summary']})")

    def _backends_up(self, target: dict) -> set | None:
        try:
            return backends_up(haproxy_stat(target["haproxy_socket"]))
        except OSError:
            return None

    def _reload_and_watch(self, changed: list, before_up: dict) -> str | None:
        """Why the changed targets are not healthy after their reload, or None."""
        for target in changed:
            done = run(target["reload"])
            if done.returncode != 0:
                return f"{target['name']}: {' '.join(target['reload'])} failed: {said(done)}"
        if not changed:
            return None
        deadline = self.clock() + self.health_wait
        while True:
            for target in changed:
                before = before_up.get(target["name"])
                if before:
                    now = self._backends_up(target)
                    lost = lost_backends(before, now) if now is not None else []
                    if lost:
                        return f"{target['name']}: no server up any more in {', '.join(lost)}"
            if self.clock() >= deadline:
                break
            self.sleep(0.5)
        for target in changed:
            for command in target.get("health", []):
                done = run(command)
                if done.returncode != 0:
                    return f"{target['name']}: health check {' '.join(command)} failed: {said(done)}"
            if target.get("haproxy_socket") and before_up.get(target["name"]) is not None:
                if self._backends_up(target) is None:
                    return f"{target['name']}: the runtime API at {target['haproxy_socket']} does not answer"
        for command in self.config.get("health_commands", []):
            done = run(command)
            if done.returncode != 0:
                return f"health command {' '.join(command)} failed: {said(done)}"
        return None

    # -- waiting for the next push

    def wait_for_push(self, revision: str | None) -> None:
        """Return once the central tip is not ``revision`` (or after about
        WAIT_SECONDS): one ssh call that the repository host holds open."""
        host, _path = ssh_target(self.config["source"])
        argv = [*shlex.split(self.config["ssh"]), host, f"floatip-wait {revision or 'none'}"]
        try:
            done = run(argv, timeout=WAIT_SECONDS + 30)
        except SyncError as exc:
            self.log(str(exc))
            self.sleep(2)
            return
        if done.returncode != 0:
            self.log(f"waiting for a push failed: {said(done)}")
            self.sleep(2)

    def watch(self) -> None:
        while True:
            status = self.sync()
            self.wait_for_push(self._central_tip(status))

    def _central_tip(self, status: dict) -> str | None:
        """The tip this node has seen: wait for anything newer."""
        try:
            return self.hg.head()["revision"]
        except SyncError:
            return status.get("revision")


def ssh_target(source: str) -> tuple:
    """``user@host`` and the path of an ``ssh://user@host//path`` URL."""
    if not source.startswith("ssh://"):
        raise SyncError(f"the source {source} is not an ssh:// URL")
    rest = source[len("ssh://"):]
    host, _slash, path = rest.partition("/")
    return host, path


# ---------------------------------------------------------------- serving

# The central repository's hooks (its .hg/hgrc): only a committer's key,
# whose forced command sets FLOATIP_PUSHER, may add to it; every push is
# logged with the committer's name.
REFUSE = 'test -n "$FLOATIP_PUSHER" || { echo "floatip: this key may pull, not push" >&2; exit 1; }'
REPOSITORY_HOOKS = {
    "pretxnopen.floatip-pusher": REFUSE,
    "prepushkey.floatip-pusher": REFUSE,
    "changegroup.floatip-pushlog":
        'echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) $FLOATIP_PUSHER $HG_NODE $HG_NODE_LAST" >> .hg/floatip-pushlog',
}


def repository_hgrc() -> str:
    lines = ["[hooks]"] + [f"{name} = {command}" for name, command in REPOSITORY_HOOKS.items()]
    return "\n".join(lines) + "\n"


def serve_argv(command: str, repository: str, home: str) -> list:
    """The command a key's forced command runs for ``SSH_ORIGINAL_COMMAND``,
    or SyncError when the key may not run it."""
    words = shlex.split(command)
    if len(words) == 5 and words[0] == "hg" and words[1] == "-R" and words[3:] == ["serve", "--stdio"]:
        asked = os.path.realpath(os.path.join(home, words[2]))
        if asked != os.path.realpath(repository):
            raise SyncError(f"only {repository} is served here, not {words[2]}")
        return ["hg", "-R", repository, "serve", "--stdio"]
    if len(words) == 2 and words[0] == "floatip-wait":
        return ["floatip-wait", words[1]]
    raise SyncError(f"refused: {command!r} (this key may run hg serve and floatip-wait only)")


def repository_tip(repository: str) -> str:
    done = run(["hg", "-R", repository, "log", "-r", "default", "-T", "{node}"], env={**os.environ, "HGPLAIN": "1"})
    return done.stdout.strip() if done.returncode == 0 else "none"


def wait_for_change(repository: str, revision: str, seconds: float = WAIT_SECONDS,
                    sleep=time.sleep, clock=time.monotonic) -> str:
    """The tip once it is not ``revision``, or the unchanged tip after
    ``seconds``. Polls the changelog's size and time, which every push
    changes, and asks hg only then."""
    changelog = os.path.join(repository, ".hg", "store", "00changelog.i")

    def mark() -> tuple:
        try:
            info = os.stat(changelog)
            return info.st_size, info.st_mtime_ns
        except FileNotFoundError:
            return None

    # The mark first: a push that lands while hg reads the tip changes it.
    seen = mark()
    tip = repository_tip(repository)
    deadline = clock() + seconds
    while tip == revision and clock() < deadline:
        sleep(WAIT_POLL)
        now = mark()
        if now != seen:
            seen = now
            tip = repository_tip(repository)
    return tip


def serve(args: argparse.Namespace) -> int:
    command = os.environ.get("SSH_ORIGINAL_COMMAND", "")
    try:
        argv = serve_argv(command, args.repository, os.path.expanduser("~"))
    except SyncError as exc:
        sys.stderr.write(f"floatip: {exc}\n")
        return 1
    if argv[0] == "floatip-wait":
        sys.stdout.write(wait_for_change(args.repository, argv[1]) + "\n")
        return 0
    env = {key: value for key, value in os.environ.items() if key != "FLOATIP_PUSHER"}
    if args.pusher:
        env["FLOATIP_PUSHER"] = args.pusher
    os.execvpe(argv[0], argv, env)
    return 1  # not reached


# ---------------------------------------------------------------- main

def main(argv: list | None = None) -> int:
    parser = argparse.ArgumentParser(prog="floatip-config-sync", description=__doc__.split("\n", 1)[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("sync", "watch", "status"):
        sub = commands.add_parser(name)
        sub.add_argument("--config", default="/etc/floatip/config-sync.json")
        if name == "sync":
            sub.add_argument("--retry", action="store_true", help="apply a refused or rolled-back revision again")
    commands.add_parser("hgrc", help="print the central repository's hooks")
    sub = commands.add_parser("serve")
    sub.add_argument("--repository", required=True)
    sub.add_argument("--pusher", help="the committer this key belongs to; without it the key is read-only")
    args = parser.parse_args(argv)
    if args.command == "serve":
        return serve(args)
    if args.command == "hgrc":
        sys.stdout.write(repository_hgrc())
        return 0
    with open(args.config, encoding="utf-8") as handle:
        config = json.load(handle)
    syncer = Syncer(config)
    if args.command == "status":
        sys.stdout.write(json.dumps(load_status(config["status"], config["node"]), indent=2, sort_keys=True) + "\n")
        return 0
    if args.command == "watch":
        syncer.watch()
        return 0
    status = syncer.sync(retry=args.retry)
    sys.stdout.write(json.dumps(status, indent=2, sort_keys=True) + "\n")
    return 1 if status["error"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
