# Copyright: floatip.ha contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# A file of the config_sync role, not a module of the collection: the role
# installs it on the nodes and the repository host. Its tests load it by
# path (tests/unit/config_sync_daemon.py).
"""Config sync: every node serves the configuration of a central Mercurial repository.

The config_sync role copies this file to the repository host and to every
node as ``/usr/local/lib/floatip/config_sync.py`` and runs it there; it
needs the standard library, ``hg`` and the daemons' own checks, nothing of
Ansible. (What the controller needs, the seed's layout, is in the
collection's plugins/module_utils/config_sync.py.) Three commands:

``serve`` (repository host, the forced command of every key that may reach
    the repository over ssh): lets ``hg serve --stdio`` through, read-only for
    a node's key, read-write for a committer's key (the repository's hooks,
    ``repository_hgrc``, refuse a push without a committer's name and log
    each push with it), and answers ``floatip-wait REV``, which returns as soon as the
    repository's tip is no longer REV: a node learns of a push within a
    fraction of a second, without polling over ssh. Each key holds at most
    ``WAIT_SLOTS`` waits at a time; a command it may not run, or cannot be
    read, is answered with one line.
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

A sync is guarded: the revision is exported to a staging directory; one
that holds anything but directories and regular files (a symbolic link)
is refused before a file is read. Each target's file is read against the
node's policy (a push is data, not code: nothing that runs a program,
opens an admin surface or reads a file as root outside the places set
aside for it; see "policy" below), then checked with its daemon's own
check (``haproxy -c``, ``keepalived --config-test``); a revision that
fails either is refused whole: nothing goes live, the status names the
revision, the target and why. A revision that passes is recorded as
pending, then made live target by target (only targets whose file changes
are reloaded), each file with its target's owner and mode, and watched: a
reload that fails, a health command that fails, or an HAProxy backend that
had a server up before and has none after, rolls every changed target back
to what served before. A sync that stops before its watch ends (killed, a
reboot) leaves the pending record: the next sync puts back what served
before, reloads it, and applies the revision again from the start; twice
interrupted, it counts as rolled back. A live file that differs from what
the last sync wrote (an edit on the node) is kept in ``local-edits/`` and
reported, never thrown away silently. One sync at a time (a lock); the
status is a JSON file (0600) that Ansible reads as the local fact
``floatip_config_sync``.
"""

from __future__ import annotations

import argparse
import csv
import fcntl
import grp
import hashlib
import io
import ipaddress
import json
import os
import posixpath
import pwd
import re
import select
import shlex
import shutil
import socket
import stat
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
# Waits one key may hold at once: the one it uses, and those a restarted
# watcher may leave behind until they notice that it is gone.
WAIT_SLOTS = 3
LOCK_TIMEOUT = 120.0
CHECK_TIMEOUT = 60.0
OUTPUT_LIMIT = 600
# A revision's live file larger than this is refused (no daemon's config
# is that large; a push that is would fill the node's memory).
SIZE_LIMIT = 8 * 1024 * 1024
# A revision that a sync was applying when it stopped twice counts as
# rolled back.
INTERRUPTIONS_LIMIT = 2
# The modes of what the sync writes that is not a target's live file.
PRIVATE = 0o600
# A revision id as hg prints it, or "none" (an empty repository).
REVISION = re.compile(r"[0-9a-f]{40}|none")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class SyncError(Exception):
    """A problem that stops a sync; its message says what to look at."""


# ---------------------------------------------------------------- layout

def check_tree(tree: str) -> None:
    """Refuse an exported revision that holds anything but directories and
    regular files, before any of its files is read: ``hg archive`` writes a
    committed symbolic link as one, and reading through it would quote a
    file of the node, as root."""
    for root, directories, files in os.walk(tree):
        for name in sorted(directories + files):
            path = os.path.join(root, name)
            mode = os.lstat(path).st_mode
            if stat.S_ISDIR(mode) or stat.S_ISREG(mode):
                continue
            relative = os.path.relpath(path, tree)
            what = "a symbolic link" if stat.S_ISLNK(mode) else "not a regular file"
            raise Refused(relative.split(os.sep)[0], f"{relative} is {what}: a revision may hold regular files only")


def _files(tree: str, directory: str, target: str) -> dict:
    """What directly in ``directory`` (of ``tree``) is not a directory, by
    name (none if it is absent); hidden files are left out. Reading refuses
    what is not a regular file."""
    path = os.path.join(tree, directory)
    try:
        names = os.listdir(path)
    except FileNotFoundError:
        return {}
    except NotADirectoryError:
        raise Refused(target, f"{directory} is a file: it must be a directory of {target}'s files") from None
    return {
        name: os.path.join(path, name)
        for name in names
        if not name.startswith(".") and not stat.S_ISDIR(os.lstat(os.path.join(path, name)).st_mode)
    }


def _read_regular(path: str, shown: str, target: str) -> str:
    """A revision's file, never through a link or from anything but a
    regular file, as UTF-8 text."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        raise Refused(target, f"{shown} cannot be read as a regular file ({exc.strerror})") from None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise Refused(target, f"{shown} is not a regular file: a revision may hold regular files only")
        data = handle.read(SIZE_LIMIT + 1)
    if len(data) > SIZE_LIMIT:
        raise Refused(target, f"{shown} is larger than {SIZE_LIMIT // (1024 * 1024)} MiB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Refused(target, f"{shown} is not UTF-8 text (byte {exc.start})") from None


def assemble(tree: str, target: str, node: str) -> Assembled:
    """The live file ``node`` serves for ``target`` from the exported tree,
    the repository paths it was made of, in order, and where each line
    comes from."""
    shared = _files(tree, target, target)
    own = _files(tree, os.path.join(target, "nodes", node), target)
    names = sorted(set(shared) | set(own))
    if not names:
        raise Refused(target, f"the revision has no file under {target}/ or {target}/nodes/{node}/")
    assembled = Assembled(target)
    for name in names:
        path = own.get(name) or shared[name]
        source = os.path.relpath(path, tree)
        assembled.add(source, _read_regular(path, source, target))
    if len(assembled.text) > SIZE_LIMIT:
        raise Refused(target, f"the {target} file the revision makes is larger than {SIZE_LIMIT // (1024 * 1024)} MiB")
    return assembled


# ---------------------------------------------------------------- policy
#
# A push is data, not code: committers are trusted with traffic, not with
# root. Before a revision's file reaches its daemon's own check (which
# already runs as root: ``haproxy -c`` runs a ``lua-load`` file), it is
# read here the way the daemon reads it, and refused if it would run a
# program, open an admin surface, or make the daemon read (and serve) a file
# that the node's operator did not set aside for it. What the roles
# themselves render (the runtime API socket, the VIP layer's scripts) is
# allowed by the node's config-sync.json, written by the role, so that the
# paths have one home. roles/config_sync/README.md, "What a committer may
# and may not do", says the same for people.

class Refused(SyncError):
    """A revision that may not be served; ``target`` is what it was for."""

    def __init__(self, target: str, message: str) -> None:
        super().__init__(message)
        self.target = target


class Assembled:
    """A target's live file as the revision makes it, and where each of its
    lines comes from."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.parts: list = []
        self.sources: list = []
        self._spans: list = []
        self._lines = 0

    def add(self, source: str, text: str) -> None:
        if text and not text.endswith("\n"):
            text += "\n"
        self.parts.append(text)
        self.sources.append(source)
        self._spans.append((self._lines, source))
        self._lines += text.count("\n")

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def where(self, line: int) -> str:
        """``haproxy/probe.cfg line 3`` for line ``line`` (from 1) of the file."""
        for start, source in reversed(self._spans):
            if line > start:
                return f"{source} line {line - start}"
        return f"{self.target} line {line}"


def _shown(words: list, limit: int = 80) -> str:
    text = " ".join(words)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _plain_text(assembled: Assembled) -> None:
    """Refuse control characters: each daemon reads them its own way (HAProxy
    ends a line at a CR or a NUL, Python's splitlines at more)."""
    for number, line in enumerate(assembled.text.split("\n"), start=1):
        if line.endswith("\r"):
            line = line[:-1]
        bad = next((char for char in line if (ord(char) < 32 and char != "\t") or ord(char) == 127), None)
        if bad is not None:
            raise Refused(assembled.target, f"{assembled.where(number)}: control character {bad!r}: "
                                            "write the configuration as plain text")


# A path as a daemon reads it with no second thought: no quotes, escapes,
# variables or spaces.
_PLAIN_PATH = re.compile(r"/[A-Za-z0-9._+@=~/-]*")


def _under(path: str, directory: str) -> bool:
    directory = directory.rstrip("/") or "/"
    return path == directory or path.startswith(directory.rstrip("/") + "/")


def path_allowed(path: str, directories: list) -> bool:
    """Whether ``path`` is an absolute, normalised path inside one of
    ``directories``, also once symbolic links on the node are resolved."""
    if not _PLAIN_PATH.fullmatch(path) or any(part in (".", "..") for part in path.split("/")):
        return False
    normal = posixpath.normpath(path)
    real = os.path.realpath(normal)
    return any(_under(normal, directory) and _under(real, os.path.realpath(directory)) for directory in directories)


# -- HAProxy

HAPROXY_SECTIONS = frozenset({
    "global", "defaults", "frontend", "backend", "listen", "userlist", "peers", "resolvers", "mailers",
    "http-errors", "ring", "cache", "log-forward", "program", "fcgi-app", "namespace_list",
})
# Sections a revision may hold; the others run programs (program), talk to
# agents config sync does not let in (fcgi-app), or move sockets into other
# network namespaces (namespace_list).
HAPROXY_ALLOWED_SECTIONS = frozenset({
    "global", "defaults", "frontend", "backend", "listen", "userlist", "peers", "resolvers", "mailers",
    "http-errors", "ring", "cache", "log-forward",
})
# The global section is an allowlist: process-wide settings that tune,
# log and limit, and nothing that starts programs, loads code, writes or
# reads files, changes the account or the process model. ``user``,
# ``group``, ``chroot``, ``stats socket`` and ``server-state-file`` are
# checked against the node's policy; ``tune.*`` is allowed but for Lua's.
HAPROXY_GLOBAL = frozenset({
    "log", "log-tag", "log-send-hostname", "node", "description", "localpeer", "cluster-secret",
    "maxconn", "maxconnrate", "maxcomprate", "maxcompcpuusage", "maxpipes", "maxsessrate", "maxsslconn",
    "maxsslrate", "maxzlibmem", "max-spread-checks", "spread-checks", "nbthread", "cpu-map", "numa-cpu-mapping",
    "thread-groups", "busy-polling", "no-memory-trimming", "noepoll", "nokqueue", "noevports", "nopoll",
    "nosplice", "nogetaddrinfo", "noreuseport", "profiling.tasks", "profiling.memory", "ulimit-n",
    "fd-hard-limit", "strict-limits", "grace", "hard-stop-after", "close-spread-time",
    "ssl-default-bind-ciphers", "ssl-default-bind-ciphersuites", "ssl-default-bind-curves",
    "ssl-default-bind-options", "ssl-default-bind-sigalgs", "ssl-default-bind-client-sigalgs",
    "ssl-default-server-ciphers", "ssl-default-server-ciphersuites", "ssl-default-server-options",
    "ssl-default-server-curves", "ssl-default-server-sigalgs", "ssl-default-server-client-sigalgs",
    "ssl-server-verify", "ssl-skip-self-issued-ca", "h1-accept-payload-with-any-method", "h1-case-adjust",
    "h2-workaround-bogus-websocket-clients", "pp2-never-send-local",
    "user", "group", "chroot", "stats", "server-state-file",
})
# Why a directive is refused, where it is one of the well-known dangers.
HAPROXY_WHY = {
    "program": "starts a program as root",
    "external-check": "runs a program for health checks",
    "insecure-fork-wanted": "lets HAProxy start programs",
    "insecure-setuid-wanted": "lets HAProxy start programs that change their account",
    "lua-load": "loads Lua code (haproxy -c already runs it, as root)",
    "lua-load-per-thread": "loads Lua code (haproxy -c already runs it, as root)",
    "lua-prepend-path": "points Lua at code to load",
    "setenv": "changes the environment HAProxy and its reloads run with",
    "presetenv": "changes the environment HAProxy and its reloads run with",
    "resetenv": "changes the environment HAProxy and its reloads run with",
    "unsetenv": "changes the environment HAProxy and its reloads run with",
    "master-worker": "changes how HAProxy's processes are run",
    "mworker-max-reloads": "changes how HAProxy's processes are run",
    "daemon": "changes how HAProxy's processes are run",
    "nbproc": "changes how HAProxy's processes are run",
    "uid": "changes the account HAProxy runs as",
    "gid": "changes the account HAProxy runs as",
    "pidfile": "makes HAProxy write a file as root",
    "unix-bind": "changes who owns the socket files HAProxy creates as root",
    "ssl-engine": "loads an OpenSSL engine (code) into HAProxy",
    "ssl-provider": "loads an OpenSSL provider (code) into HAProxy",
    "ssl-provider-path": "points OpenSSL at code to load",
    "set-dumpable": "lets a HAProxy that runs as root dump its memory to disk",
    "use-fcgi-app": "talks to a FastCGI application config sync does not let in",
    "server-state-file-name": "reads a file named in the revision, as root",
    "backing-file": "makes HAProxy write a file",
    "default-path": "moves where HAProxy looks for the files it reads",
    "ca-base": "moves where HAProxy looks for the files it reads",
    "crt-base": "moves where HAProxy looks for the files it reads",
    "key-base": "moves where HAProxy looks for the files it reads",
}
HAPROXY_RULES = frozenset({"http-request", "http-response", "http-after-response", "http-error",
                           "tcp-request", "tcp-response"})
# Arguments that name a file HAProxy reads as root at startup: served to
# clients (errorfile, return ... file), or loaded as patterns (-f, map).
HAPROXY_SERVED_FILE_WORDS = frozenset({"errorfile", "file", "lf-file"})
HAPROXY_TLS_FILE_WORDS = frozenset({"crt", "crt-list", "ca-file", "crl-file", "ca-verify-file", "ca-sign-file",
                                    "issuers-chain-path"})
HAPROXY_ADDRESSED = frozenset({"bind", "dgram-bind", "peer"})
HAPROXY_SERVERS = frozenset({"server", "default-server", "server-template"})
HAPROXY_FILTERS = frozenset({"compression", "cache", "trace", "bwlim-in", "bwlim-out"})
_MAP_FILE = re.compile(r"(?:^|[\[,({])((?:map(?:_[a-z0-9]+){0,2})|set-map|del-map|add-acl|del-acl)\(([^,)]*)")
_ENV_FETCH = re.compile(r"(?:^|[\[,({])env\(")
_LUA_EXPRESSION = re.compile(r"(?:%\[|,)lua\.")
_FD_ADDRESS = re.compile(r"\A(?:fd|sockpair)@", re.IGNORECASE)
_UNIX_ADDRESS = re.compile(r"\A(?:/|unix@|uxst@|uxdg@)", re.IGNORECASE)
_HEX = "0123456789abcdefABCDEF"


def haproxy_words(line: str) -> list:
    """The words of one line of haproxy.cfg as HAProxy 2.6 makes them
    (parse_line in src/tools.c): quotes and escapes resolved, a comment or a
    CR ends the line, a NUL ends a word. A ``"$NAME"`` expansion is refused:
    the node's environment is not part of the revision."""
    line = line.lstrip(" \t\n\v\f\r")
    words: list = []
    word: list = []
    squote = dquote = False
    index = 0
    while index < len(line):
        char = line[index]
        if char in "\n\r\0" or (char == "#" and not squote and not dquote):
            break
        if char == '"' and not squote:
            dquote = not dquote
        elif char == "'" and not dquote:
            squote = not squote
        elif char == "\\" and not squote:
            following = line[index + 1:index + 2]
            escapes = {" ": " ", "\\": "\\", "t": "\t", "n": "\n", "r": "\r", "#": "#", "'": "'", '"': '"'}
            if following in escapes:
                word.append(escapes[following])
                index += 1
            elif following == "$" and dquote:
                word.append("$")
                index += 1
            elif following == "x":
                digits = line[index + 2:index + 4]
                if len(digits) != 2 or any(digit not in _HEX for digit in digits):
                    raise ValueError("a \\x escape without two hexadecimal digits")
                word.append(chr(int(digits, 16)))
                index += 3
            else:
                word.append("\\")
        elif char in " \t\v\f" and not squote and not dquote:
            while index < len(line) and line[index] in " \t\v\f":
                index += 1
            words.append("".join(word))
            word = []
            continue
        elif char == "$" and dquote:
            raise ValueError("an environment variable (\"$NAME\"): the node's environment is not part of the "
                             "revision; write the value")
        else:
            word.append(char)
        index += 1
    words.append("".join(word))
    if squote or dquote:
        raise ValueError("an unmatched quote")
    # HAProxy's words are C strings: a NUL (\x00) ends one.
    words = [text.split("\0", 1)[0] for text in words]
    while words and words[-1] == "":
        words.pop()
    return words


class HAProxyPolicy:
    """What a revision's haproxy.cfg may hold on this node.

    ``policy`` (config-sync.json, from the role): ``run_as`` {user, group,
    chroot} that the global section must set, and to nothing else;
    ``stats_sockets``, the runtime API sockets the haproxy role renders
    (the words after ``stats socket``); ``file_dirs``, where files that
    HAProxy serves or loads as patterns may be; ``tls_dirs``, where
    certificates, keys and CAs may be."""

    def __init__(self, policy: dict) -> None:
        self.run_as = dict(policy.get("run_as") or {})
        self.stats_sockets = [" ".join(haproxy_words(line)) for line in policy.get("stats_sockets", [])]
        self.file_dirs = list(policy.get("file_dirs", []))
        self.tls_dirs = list(policy.get("tls_dirs", []))
        for key in ("user", "group", "chroot"):
            if not self.run_as.get(key):
                raise SyncError(f"config-sync.json: the haproxy policy has no run_as.{key}")

    def check(self, assembled: Assembled) -> None:
        _plain_text(assembled)
        section = None
        seen_global = None
        run_as_seen: dict = {}
        for number, raw in enumerate(assembled.text.split("\n"), start=1):

            def refuse(what: str, why: str, number: int = number) -> None:
                raise Refused(assembled.target, f"{assembled.where(number)}: '{what}' {why}")

            if raw.lstrip(" \t\v\f").startswith("["):
                refuse(raw.strip()[:40], "is a scope line, which config sync does not let in")
            try:
                words = haproxy_words(raw)
            except ValueError as exc:
                refuse(_shown(raw.split()), f"has {exc}")
            if not words or words[0].startswith("."):
                # Empty, or a conditional block's directive (.if/.else/...): the
                # lines inside are checked whatever the condition.
                continue
            if words[0] == "no":
                # "no option x", "no log": switches off, never on.
                continue
            if words[0] == "default":
                words = words[1:]
                if not words:
                    continue
            keyword = words[0]
            if keyword in HAPROXY_SECTIONS:
                if keyword not in HAPROXY_ALLOWED_SECTIONS:
                    refuse(_shown(words[:2]), "section " + HAPROXY_WHY.get(keyword, "is not one config sync lets in"))
                section = keyword
                if keyword == "global" and seen_global is None:
                    seen_global = number
                continue
            self._check_generic(words, refuse)
            if section == "global":
                self._check_global(words, refuse, run_as_seen)
            elif section in ("defaults", "frontend", "backend", "listen"):
                self._check_proxy(words, refuse)
            elif section == "http-errors" and keyword == "errorfile":
                self._check_file(words, 2, self.file_dirs, refuse)
            if keyword in HAPROXY_ADDRESSED:
                self._check_addresses(words, refuse)
            if keyword in HAPROXY_ADDRESSED or keyword in HAPROXY_SERVERS:
                self._check_socket_options(words, refuse)
        if seen_global is None:
            raise Refused(assembled.target, f"{assembled.where(1)}: no 'global' section: without "
                                            f"'user {self.run_as['user']}' and 'chroot {self.run_as['chroot']}' "
                                            "HAProxy would run as root")
        for key in ("user", "group", "chroot"):
            if key not in run_as_seen:
                raise Refused(assembled.target, f"{assembled.where(seen_global)}: the global section has no "
                                                f"'{key} {self.run_as[key]}': without it HAProxy runs as root"
                                                + (" with the whole file system in reach" if key == "chroot" else ""))

    def _check_generic(self, words: list, refuse) -> None:
        keyword = words[0]
        if keyword in HAPROXY_WHY and keyword not in HAPROXY_GLOBAL:
            refuse(_shown(words), HAPROXY_WHY[keyword])
        if keyword.startswith("tune.lua.") or keyword.startswith("lua-"):
            refuse(_shown(words), "tunes or loads Lua, which config sync does not let in")
        for index, word in enumerate(words):
            if _FD_ADDRESS.match(word):
                refuse(_shown(words), "uses a file descriptor of the node's processes; use an address")
            if _ENV_FETCH.search(word):
                refuse(_shown(words), "reads the node's environment (env()), which is not part of the revision")
            if _LUA_EXPRESSION.search(word):
                refuse(_shown(words), "calls Lua, which config sync does not let in")
            for match in _MAP_FILE.finditer(word):
                # As written: HAProxy resolves quotes inside (map("..")) once
                # more, so a quoted path is refused rather than guessed at.
                path = match.group(2)
                if not path_allowed(path, self.file_dirs):
                    refuse(_shown(words), f"loads {path or 'a file'} as root; pattern and map files may come from "
                                          f"{self._dirs(self.file_dirs)} only")
            if word == "-f" and index + 1 < len(words):
                self._check_file(words, index + 1, self.file_dirs, refuse)

    def _check_global(self, words: list, refuse, run_as_seen: dict) -> None:
        keyword = words[0]
        if keyword.startswith("tune.") and not keyword.startswith("tune.lua."):
            return
        if keyword not in HAPROXY_GLOBAL:
            refuse(_shown(words), HAPROXY_WHY.get(keyword, "is not a global keyword config sync lets in "
                                                           "(README: what a committer may and may not do)"))
        if keyword in ("user", "group", "chroot"):
            if words[1:] != [self.run_as[keyword]]:
                refuse(_shown(words), f"must be '{keyword} {self.run_as[keyword]}', as the haproxy role sets it: "
                                      "anything else runs HAProxy as another account or outside its chroot")
            run_as_seen[keyword] = True
        elif keyword == "stats":
            if words[1:2] == ["socket"]:
                if " ".join(words[2:]) not in self.stats_sockets:
                    refuse(_shown(words), "opens a runtime API socket other than the haproxy role's own ("
                                          + "; ".join(f"stats socket {line}" for line in self.stats_sockets) + ")")
            elif words[1:2] not in (["timeout"], ["maxconn"]):
                refuse(_shown(words), "is not a global keyword config sync lets in")
        elif keyword == "server-state-file":
            if len(words) != 2 or not path_allowed(words[1], [self.run_as["chroot"]]):
                refuse(_shown(words), f"may only name a file in {self.run_as['chroot']}, HAProxy's own directory")

    def _check_proxy(self, words: list, refuse) -> None:
        keyword = words[0]
        if keyword == "option" and words[1:2] == ["external-check"]:
            refuse(_shown(words), HAPROXY_WHY["external-check"])
        if keyword == "errorfile":
            self._check_file(words, 2, self.file_dirs, refuse)
        elif keyword == "filter" and words[1:2] and words[1] not in HAPROXY_FILTERS:
            refuse(_shown(words), "is a filter config sync does not let in (compression, cache, trace and "
                                  "bwlim-in/out are)")
        elif keyword == "load-server-state-from-file" and words[1:] not in (["global"], ["none"]):
            refuse(_shown(words), "reads a file named by the revision; use 'global' (the haproxy role's file)")
        elif keyword == "stats" and words[1:2] == ["admin"]:
            self._check_stats_admin(words, refuse)
        elif keyword in HAPROXY_RULES:
            self._check_rule(words, refuse)

    def _check_rule(self, words: list, refuse) -> None:
        end = next((index for index, word in enumerate(words) if word in ("if", "unless")), len(words))
        action = 2 if words[0] in ("tcp-request", "tcp-response") and words[1:2] != ["inspect-delay"] else 1
        for index in range(1, end):
            word = words[index]
            if word.startswith("lua.") and (index == action or words[index - 1] == "use-service"):
                refuse(_shown(words), "calls Lua, which config sync does not let in")
            if word in HAPROXY_SERVED_FILE_WORDS and index + 1 < end:
                self._check_file(words, index + 1, self.file_dirs, refuse)

    def _check_stats_admin(self, words: list, refuse) -> None:
        # The stats page's admin actions (drain, disable, weights) only
        # behind a login: "stats admin if { http_auth_group(list) group... }"
        # or "{ http_auth(list) }", as the haproxy role writes it.
        rest = words[2:]
        shaped = (len(rest) >= 4 and rest[0] == "if" and rest[1] == "{" and rest[-1] == "}"
                  and re.fullmatch(r"http_auth(?:_group)?\([A-Za-z0-9._:-]+\)", rest[2]) is not None
                  and (rest[2].startswith("http_auth_group(") == (len(rest) > 4))
                  and all(re.fullmatch(r"[A-Za-z0-9._:-]+", group) for group in rest[3:-1]))
        if not shaped:
            refuse(_shown(words), "opens the stats page's admin actions; only behind a login: "
                                  "'stats admin if { http_auth_group(<userlist>) <group>... }' or "
                                  "'stats admin if { http_auth(<userlist>) }'")

    def _check_addresses(self, words: list, refuse) -> None:
        position = 2 if words[0] == "peer" else 1
        for address in (words[position] if len(words) > position else "").split(","):
            if _UNIX_ADDRESS.match(address):
                refuse(_shown(words), "makes HAProxy create a socket file as root, which can replace any file; "
                                      "listen on an address")

    def _check_socket_options(self, words: list, refuse) -> None:
        for index, word in enumerate(words[1:], start=1):
            if word in ("namespace", "expose-fd"):
                refuse(_shown(words), f"uses '{word}', which config sync does not let in")
            if word in HAPROXY_TLS_FILE_WORDS and index + 1 < len(words):
                self._check_file(words, index + 1, self.tls_dirs, refuse)

    def _check_file(self, words: list, index: int, directories: list, refuse) -> None:
        path = words[index] if index < len(words) else ""
        if not path_allowed(path, directories):
            refuse(_shown(words), f"reads {path or 'a file'} as root; such files may come from "
                                  f"{self._dirs(directories)} only (absolute paths)")

    @staticmethod
    def _dirs(directories: list) -> str:
        return ", ".join(directories) if directories else "nowhere (none set aside on this node)"


# -- keepalived

# The blocks a keepalived.conf may hold and the keywords of each; a block's
# value is its keywords, and its sub-blocks under "blocks". A block marked
# "data" holds values only (addresses, names). Everything else (include,
# virtual_server and its checkers, notify scripts, startup/shutdown scripts,
# files keepalived writes) is refused.
_KEEPALIVED_DATA = {"data": True}
# global_defs keywords that name a program, a FIFO or an account: only with
# the values of the node's policy.
KEEPALIVED_NAMED = ("script_user", "vrrp_notify_fifo", "vrrp_notify_fifo_script")
_KEEPALIVED_TRACKS = {name: _KEEPALIVED_DATA for name in
                      ("track_interface", "track_script", "track_file", "track_process", "track_bfd")}
KEEPALIVED_SCHEMA = {
    "global_defs": {
        "keywords": {
            "router_id", "vrrp_version", "vrrp_mcast_group4", "vrrp_mcast_group6", "vrrp_garp_master_delay",
            "vrrp_garp_master_repeat", "vrrp_garp_master_refresh", "vrrp_garp_master_refresh_repeat",
            "vrrp_garp_lower_prio_delay", "vrrp_garp_lower_prio_repeat", "vrrp_down_timer_adverts",
            "vrrp_garp_interval", "vrrp_gna_interval", "vrrp_min_garp", "vrrp_lower_prio_no_advert",
            "vrrp_higher_prio_send_advert", "vrrp_check_unicast_src", "vrrp_skip_check_adv_addr", "vrrp_strict",
            "vrrp_priority", "vrrp_no_swap", "vrrp_rt_priority", "vrrp_cpu_affinity", "vrrp_rlimit_rttime",
            "vrrp_startup_delay", "vrrp_rx_bufs_policy", "vrrp_rx_bufs_multiplier", "vrrp_notify_priority_changes",
            "max_auto_priority", "min_auto_priority_delay", "dynamic_interfaces", "disable_local_igmp",
            "log_unknown_vrids", "notification_email_from", "smtp_server", "smtp_helo_name", "smtp_connect_timeout",
            "smtp_alert", "smtp_alert_vrrp", "no_email_faults", "enable_script_security",
            # Only with the values the node's policy gives (the VIP layer's own).
            *KEEPALIVED_NAMED,
        },
        "blocks": {"notification_email": _KEEPALIVED_DATA},
    },
    "vrrp_instance": {
        "keywords": {
            "state", "interface", "virtual_router_id", "priority", "advert_int", "version", "unicast_src_ip",
            "mcast_src_ip", "check_unicast_src", "unicast_fault_no_peer", "unicast_ttl", "old_unicast_checksum",
            "use_vmac", "vmac_xmit_base", "native_ipv6", "dont_track_primary", "track_src_ip", "accept",
            "no_accept", "skip_check_adv_addr", "strict_mode", "preempt", "nopreempt", "preempt_delay",
            "promote_secondaries", "linkbeat_use_polling", "garp_master_delay", "garp_master_refresh",
            "garp_master_repeat", "garp_master_refresh_repeat", "garp_lower_prio_delay", "garp_lower_prio_repeat",
            "down_timer_adverts", "lower_prio_no_advert", "higher_prio_send_advert", "kernel_rx_buf_size",
            "smtp_alert", "notify_priority_changes", "debug",
        },
        "blocks": {
            "unicast_peer": _KEEPALIVED_DATA, "virtual_ipaddress": _KEEPALIVED_DATA,
            "virtual_ipaddress_excluded": _KEEPALIVED_DATA, "virtual_routes": _KEEPALIVED_DATA,
            "virtual_rules": _KEEPALIVED_DATA, **_KEEPALIVED_TRACKS,
            "authentication": {"keywords": {"auth_type", "auth_pass"}, "blocks": {}},
        },
    },
    "vrrp_sync_group": {
        "keywords": {"smtp_alert", "global_tracking", "sync_group_tracking_weight", "notify_priority_changes"},
        "blocks": {"group": _KEEPALIVED_DATA, **_KEEPALIVED_TRACKS},
    },
    # Only a script of a shape the node's policy gives; no other account.
    "vrrp_script": {"keywords": {"script", "interval", "timeout", "weight", "rise", "fall", "init_fail"},
                    "blocks": {}},
    "vrrp_track_file": {"keywords": {"file", "weight", "init_file"}, "blocks": {}},
    "vrrp_track_process": {"keywords": {"process", "param_match", "weight", "quorum", "quorum_max", "delay",
                                        "terminate_delay", "fork_delay", "full_command"}, "blocks": {}},
    "static_ipaddress": _KEEPALIVED_DATA,
    "static_routes": _KEEPALIVED_DATA,
    "static_rules": _KEEPALIVED_DATA,
}
KEEPALIVED_WHY = {
    "include": "reads another file, which config sync does not check",
    "virtual_server": "(LVS, with its checkers and their scripts) is not one config sync lets in",
    "virtual_server_group": "(LVS) is not one config sync lets in",
    "MISC_CHECK": "runs a program",
    "misc_path": "runs a program",
    "quorum_up": "runs a program",
    "quorum_down": "runs a program",
    "startup_script": "runs a program as root",
    "shutdown_script": "runs a program as root",
    "notify_fifo": "makes keepalived write to a file and run a program",
    "notify_fifo_script": "runs a program as root",
    "lvs_notify_fifo": "makes keepalived write to a file and run a program",
    "lvs_notify_fifo_script": "runs a program as root",
    "user": "runs a script as another account",
    "reload_file": "makes keepalived write a file",
    "reload_time_file": "makes keepalived read a file",
    "config_save_dir": "makes keepalived write files",
    "tmp_config_directory": "makes keepalived write files",
    "vrrp_iptables": "makes keepalived change the firewall",
    "vrrp_ipsets": "makes keepalived change the firewall",
    "nftables": "makes keepalived change the firewall",
    "net_namespace": "moves keepalived into another network namespace",
    "enable_dbus": "opens an admin surface (D-Bus)",
    "snmp_socket": "opens an admin surface (SNMP)",
}
_KEEPALIVED_WORD = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*")
_KEEPALIVED_SCRIPT = re.compile(r"[A-Za-z0-9_./:+=,@%-]+(?: [A-Za-z0-9_./:+=,@%-]+)*")
_KEEPALIVED_PROGRAM_WORD = re.compile(r"notify|script|misc_|include|quorum_", re.IGNORECASE)


def keepalived_words(line: str) -> list:
    """The words of one line of keepalived.conf as keepalived 2.2 makes
    them (decomment and alloc_strvec_r in lib/parser.c): '#' and '!' start a
    comment outside double quotes, a double-quoted string is one word."""
    text = line.lstrip(" \t")
    kept: list = []
    quoted = False
    index = 0
    while index < len(text):
        char = text[index]
        if char == '"':
            quoted = not quoted
        elif char == "\\":
            if index + 1 >= len(text):
                raise ValueError("a '\\' at the end of the line (a continued line)")
            if not quoted and text[index + 1] in "#!":
                kept.append(text[index + 1])
            else:
                kept.append(text[index:index + 2])
            index += 2
            continue
        elif not quoted and char in "#!":
            break
        kept.append(char)
        index += 1
    if quoted:
        raise ValueError("an unmatched quote")
    text = "".join(kept)
    words = []
    index = 0
    space = " \t\f\n\r\v"
    while True:
        while index < len(text) and text[index] in space:
            index += 1
        if index >= len(text):
            return words
        if text[index] == '"':
            end = text.find('"', index + 1)
            words.append(text[index + 1:end])
            index = end + 1
        else:
            end = index
            while end < len(text) and text[end] not in space and text[end] != '"':
                end += 1
            words.append(text[index:end])
            index = end


def _script_matches(argv: list, shape: list) -> bool:
    """Whether a script's argv has ``shape``: literal words, ``<name>`` (a
    process name, not an option) and a last ``<address>...`` (one or more
    IP addresses)."""
    for index, expected in enumerate(shape):
        if expected == "<address>...":
            rest = argv[index:]
            return bool(rest) and all(_is_address(word) for word in rest)
        if index >= len(argv):
            return False
        if expected == "<name>":
            if not _KEEPALIVED_WORD.fullmatch(argv[index]):
                return False
        elif expected == "<address>":
            if not _is_address(argv[index]):
                return False
        elif argv[index] != expected:
            return False
    return len(argv) == len(shape)


def _is_address(word: str) -> bool:
    try:
        ipaddress.ip_address(word)
    except ValueError:
        return False
    return True


class KeepalivedPolicy:
    """What a revision's keepalived.conf may hold on this node.

    ``policy`` (config-sync.json, from the role): ``scripts``, the argv
    shapes a vrrp_script may run (the VIP layer's own: pgrep and reach-any);
    ``global_defs``, the only values of the global keywords that name a
    program, a FIFO or an account (``script_user``, ``vrrp_notify_fifo``,
    ``vrrp_notify_fifo_script``); ``track_files``, the files a
    vrrp_track_file may watch."""

    def __init__(self, policy: dict) -> None:
        self.scripts = [list(shape) for shape in policy.get("scripts", [])]
        self.global_defs = dict(policy.get("global_defs", {}))
        self.track_files = list(policy.get("track_files", []))

    def check(self, assembled: Assembled) -> None:
        _plain_text(assembled)
        stack: list = []
        for number, raw in enumerate(assembled.text.split("\n"), start=1):

            def refuse(what: str, why: str, number: int = number) -> None:
                raise Refused(assembled.target, f"{assembled.where(number)}: '{what}' {why}")

            stripped = raw.lstrip(" \t")
            if stripped[:1] == "@":
                refuse(_shown(stripped.split()[:2]), "is conditional configuration, which config sync does not "
                                                     "let in: put what differs in the node's own file")
            if stripped[:1] in ("$", "~"):
                refuse(_shown(stripped.split()[:1]), "defines or repeats parameters, which config sync does not "
                                                     "let in: write the lines out")
            try:
                words = keepalived_words(raw)
            except ValueError as exc:
                refuse(_shown(raw.split()), f"has {exc}")
            if not words:
                continue
            keyword = words[0]
            password = bool(stack) and stack[-1][0] == "authentication" and keyword == "auth_pass"
            if any("$" in word for word in words) and not password:
                refuse(_shown(words), "uses a parameter ($NAME), which config sync does not let in")
            if keyword.startswith("include"):
                refuse(_shown(words), KEEPALIVED_WHY["include"])
            if words == ["}"]:
                if not stack:
                    refuse("}", "closes a block that is not open")
                stack.pop()
                continue
            opens = words[-1] == "{"
            if "{" in words[:-1] or "}" in words:
                refuse(_shown(words), "has a brace in the middle: '{' ends a block's first line, '}' stands alone")
            schema = KEEPALIVED_SCHEMA if not stack else stack[-1][1]
            if schema.get("data"):
                # A block of values (addresses, names): keepalived reads no
                # keyword in it.
                if opens:
                    refuse(_shown(words), f"opens a block inside '{stack[-1][0]}', which holds values only")
                continue
            blocks = schema if not stack else schema.get("blocks", {})
            if opens:
                if keyword not in blocks:
                    refuse(_shown(words), self._why(keyword, "block"))
                stack.append((keyword, blocks[keyword]))
                continue
            allowed = set() if not stack else schema.get("keywords", set())
            if keyword not in allowed:
                refuse(_shown(words), self._why(keyword, "keyword here" if stack else "keyword outside a block"))
            self._check_value(stack[-1][0], words, refuse)
        if stack:
            raise Refused(assembled.target, f"{assembled.target}: block '{stack[-1][0]}' is not closed")

    @staticmethod
    def _why(keyword: str, what: str) -> str:
        if keyword in KEEPALIVED_WHY:
            return KEEPALIVED_WHY[keyword]
        if _KEEPALIVED_PROGRAM_WORD.search(keyword):
            return "runs a program or names one, which config sync does not let in"
        return f"is not a {what} config sync lets in (README: what a committer may and may not do)"

    def _check_value(self, block: str, words: list, refuse) -> None:
        keyword, value = words[0], " ".join(words[1:])
        if block == "global_defs" and keyword in {*self.global_defs, *KEEPALIVED_NAMED}:
            if value != self.global_defs.get(keyword):
                wanted = self.global_defs.get(keyword)
                refuse(_shown(words), f"may only be '{keyword} {wanted}', as the VIP layer sets it" if wanted
                       else "names a program, a FIFO or an account, which config sync does not let in")
        elif block == "vrrp_script" and keyword == "script":
            argv = value.split(" ")
            if not _KEEPALIVED_SCRIPT.fullmatch(value) or not any(_script_matches(argv, shape)
                                                                  for shape in self.scripts):
                shapes = "; ".join(" ".join(shape) for shape in self.scripts) or "none on this node"
                refuse(_shown(words), f"runs a program as root; a vrrp_script may run only {shapes}")
        elif block == "vrrp_track_file" and keyword == "file":
            if value not in self.track_files:
                refuse(_shown(words), "makes keepalived read (and create) a file as root; a vrrp_track_file may "
                                      f"watch only {', '.join(self.track_files) or 'none on this node'}")


POLICIES = {"haproxy": HAProxyPolicy, "keepalived": KeepalivedPolicy}


def policy_for(target: dict):
    """The checker of ``target``'s policy (config-sync.json), or SyncError."""
    if target["name"] not in POLICIES:
        raise SyncError(f"config-sync.json: no policy is known for target {target['name']}")
    if not isinstance(target.get("policy"), dict):
        raise SyncError(f"config-sync.json: target {target['name']} has no policy")
    return POLICIES[target["name"]](target["policy"])


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
        # The revision being made live, from before its first live file is
        # written until its health watch ends; a sync that finds one was
        # stopped on the way (see Syncer._recover).
        "pending": None,
        # The last revision whose sync was found stopped on the way.
        "interrupted": None,
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


def _account(name: str | None, lookup, what: str) -> int:
    if name is None:
        return -1
    try:
        return lookup(name)
    except KeyError:
        raise SyncError(f"there is no {what} {name} on this node") from None


def write_atomic(path: str, text: str, mode: int = PRIVATE, owner: str | None = None, group: str | None = None) -> None:
    """Replace ``path`` with ``text`` in one rename; the file has ``mode``,
    and ``owner`` and ``group`` (names) when given, before it appears."""
    uid = _account(owner, lambda name: pwd.getpwnam(name).pw_uid, "account")
    gid = _account(group, lambda name: grp.getgrnam(name).gr_gid, "group")
    directory = os.path.dirname(path) or "."
    fd, temporary = tempfile.mkstemp(prefix=".floatip-", dir=directory)
    try:
        os.fchown(fd, uid, gid)
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
        # The rename itself reaches the disk before anything that relies on it.
        directory_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(directory_fd)
        finally:
            os.close(directory_fd)
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
        self.policies = {target["name"]: policy_for(target) for target in self.targets}
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
                if status["pending"]:
                    self._recover(status)
                self._sync(status, retry)
                status["error"] = None
            except SyncError as exc:
                status["error"] = str(exc)
                self.log(str(exc))
            status["checked_at"] = _now()
            self._write_status(status)
            return status

    def _write_status(self, status: dict) -> None:
        # It names the revisions and quotes the daemons' checks: root's only.
        write_atomic(self.status_path, json.dumps(status, indent=2, sort_keys=True) + "\n", mode=PRIVATE)

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
            tree = os.path.join(stage, "tree")
            self.hg.export(revision, tree)
            try:
                wanted = self._stage(tree, stage)
            except Refused as exc:
                return self._refuse(status, head, exc.target, str(exc))
            self._apply(status, head, wanted)
        finally:
            shutil.rmtree(stage, ignore_errors=True)

    def _stage(self, tree: str, stage: str) -> dict:
        """Each target's file of the exported revision, refused (Refused)
        unless it holds regular files only, keeps to the node's policy and
        passes its daemon's own check."""
        check_tree(tree)
        wanted = {}
        for target in self.targets:
            assembled = assemble(tree, target["name"], self.node)
            # The policy first: the daemon's check reads the files the
            # configuration names, and haproxy -c runs Lua, as root.
            self.policies[target["name"]].check(assembled)
            text = assembled.text
            if _read(target["live"]) != text:
                staged = os.path.join(stage, os.path.basename(target["live"]) + "." + target["name"])
                write_atomic(staged, text, mode=PRIVATE)
                done = run(expand(target["check"], file=staged))
                if done.returncode != 0:
                    raise Refused(target["name"], f"{' '.join(target['check'][:2])}: {said(done)}")
            # else serving it already: nothing to check, nothing to reload.
            wanted[target["name"]] = (text, assembled.sources)
        return wanted

    def _refuse(self, status: dict, head: dict, target: str, why: str) -> None:
        status["refused"] = {**head, "target": target, "reason": why, "at": _now()}
        self.log(f"refused revision {head['revision'][:12]} ({head['author']}): {target}: {why}")

    def _write_live(self, target: dict, text: str) -> None:
        """A target's live file, with the owner, group and mode it needs
        (config-sync.json), whatever the file it replaces had."""
        write_atomic(target["live"], text, mode=int(str(target.get("mode", "0600")), 8),
                     owner=target.get("owner"), group=target.get("group"))

    def _keep_local_edit(self, status: dict, target: dict, live_text: str, revision: str) -> None:
        # What the last sync wrote is in the repository; anything else (an
        # edit, or a file no sync has written yet) is kept.
        if status["targets"].get(target["name"], {}).get("sha256") == sha256(live_text):
            return
        kept_dir = os.path.join(self.state_dir, "local-edits")
        os.makedirs(kept_dir, mode=0o700, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        kept = os.path.join(kept_dir, f"{stamp}-{os.path.basename(target['live'])}")
        write_atomic(kept, live_text, mode=PRIVATE)
        status["local_edits"].append({"target": target["name"], "file": target["live"], "kept_as": kept,
                                      "replaced_by": revision, "at": _now()})
        self.log(f"{target['live']} was edited on this node; the edit is kept in {kept}")

    def _record_pending(self, status: dict, head: dict, changed: list) -> None:
        """Before the first live file is written: what is about to change and
        a copy of what served before, so that a sync stopped on the way is
        found and undone (``_recover``)."""
        previous_dir = os.path.join(self.state_dir, "previous")
        os.makedirs(previous_dir, mode=0o700, exist_ok=True)
        targets = {}
        for target, old in changed:
            path = os.path.join(previous_dir, target["name"])
            if old is None:
                targets[target["name"]] = {"previous": None}
            else:
                write_atomic(path, old, mode=PRIVATE)
                targets[target["name"]] = {"previous": path}
        interrupted = status["interrupted"] or {}
        attempt = (interrupted.get("attempt", 0) if interrupted.get("revision") == head["revision"] else 0) + 1
        status["pending"] = {**head, "targets": targets, "attempt": attempt, "at": _now()}
        self._write_status(status)

    def _put_back(self, target: dict, old: str | None) -> None:
        if old is None:
            try:
                os.unlink(target["live"])
            except FileNotFoundError:
                pass
        else:
            self._write_live(target, old)
        done = run(target["reload"])
        if done.returncode != 0:
            self.log(f"{target['name']}: {' '.join(target['reload'])} failed after putting back its file: {said(done)}")

    def _recover(self, status: dict) -> None:
        """A sync was stopped between writing live files and the end of its
        health watch: what served before goes back and is reloaded. The
        revision is then applied again from the start (checked, reloaded,
        watched) by this sync; stopped INTERRUPTIONS_LIMIT times, it counts
        as rolled back."""
        pending = status["pending"]
        head = {key: pending.get(key) for key in ("revision", "author", "summary")}
        self.log(f"the sync of revision {str(head['revision'])[:12]} was stopped before its health watch ended; "
                 "putting back what served before")
        by_name = {target["name"]: target for target in self.targets}
        for name, info in sorted((pending.get("targets") or {}).items()):
            target = by_name.get(name)
            if target is None:
                self.log(f"{name} is no longer a target of this node: its file is left as it is")
                continue
            old = None
            if info.get("previous"):
                old = _read(info["previous"])
                if old is None:
                    self.log(f"{name}: the copy {info['previous']} is gone: its file is left as it is")
                    continue
            self._put_back(target, old)
        attempt = int(pending.get("attempt", 1))
        status["interrupted"] = {**head, "attempt": attempt, "at": _now()}
        status["pending"] = None
        if attempt >= INTERRUPTIONS_LIMIT:
            status["rolled_back"] = {**head, "reason": f"the sync was stopped {attempt} times while it applied "
                                                       "this revision; what served before is back", "at": _now()}
        self._write_status(status)

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
        if changed:
            self._record_pending(status, head, changed)
        for target, _old in changed:
            self._write_live(target, wanted[target["name"]][0])
        why = self._reload_and_watch([target for target, _old in changed], before_up)
        status["pending"] = None
        if why:
            for target, old in changed:
                self._put_back(target, old)
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
    or SyncError (one line) when the key may not run it."""
    allowed = "this key may run hg serve and floatip-wait only"
    if len(command) > 1024 or any(ord(char) < 32 or ord(char) == 127 for char in command):
        raise SyncError(f"refused: a command with control characters or over 1024 characters ({allowed})")
    try:
        words = shlex.split(command)
    except ValueError as exc:
        raise SyncError(f"refused: the command cannot be read ({exc}; {allowed})") from None
    if len(words) == 5 and words[0] == "hg" and words[1] == "-R" and words[3:] == ["serve", "--stdio"]:
        asked = os.path.realpath(os.path.join(home, words[2]))
        if asked != os.path.realpath(repository):
            raise SyncError(f"only {repository} is served here, not {words[2][:200]!r}")
        return ["hg", "-R", repository, "serve", "--stdio"]
    if len(words) == 2 and words[0] == "floatip-wait":
        if not REVISION.fullmatch(words[1]):
            raise SyncError("refused: floatip-wait takes a revision (40 hexadecimal digits) or none")
        return ["floatip-wait", words[1]]
    raise SyncError(f"refused: {command[:200]!r} ({allowed})")


def repository_tip(repository: str) -> str:
    done = run(["hg", "-R", repository, "log", "-r", "default", "-T", "{node}"], env={**os.environ, "HGPLAIN": "1"})
    return done.stdout.strip() if done.returncode == 0 else "none"


def client_gone(fd: int = 1) -> bool:
    """Whether whoever reads ``fd`` (the ssh session of a watcher, through
    our standard output) has gone: a stopped watcher's wait frees its slot
    at once, not after WAIT_SECONDS."""
    poller = select.poll()
    poller.register(fd, 0)
    return any(events & (select.POLLERR | select.POLLHUP | select.POLLNVAL) for _fd, events in poller.poll(0))


def wait_for_change(repository: str, revision: str, seconds: float = WAIT_SECONDS,
                    sleep=time.sleep, clock=time.monotonic, gone=lambda: False) -> str:
    """The tip once it is not ``revision``, or the unchanged tip after
    ``seconds`` or once ``gone()``. Polls the changelog's size and time,
    which every push changes, and asks hg only then."""
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
    while tip == revision and clock() < deadline and not gone():
        sleep(WAIT_POLL)
        now = mark()
        if now != seen:
            seen = now
            tip = repository_tip(repository)
    return tip


class WaitSlot:
    """One of ``slots`` waits a key may hold at once (a lock file each, in the
    repository's .hg); SyncError when all are held."""

    def __init__(self, repository: str, key: str, slots: int) -> None:
        self.directory = os.path.join(repository, ".hg", "floatip-wait")
        self.key = key
        self.slots = slots
        self.handle = None

    def __enter__(self) -> WaitSlot:
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        for index in range(self.slots):
            handle = open(os.path.join(self.directory, f"{self.key}.{index}"), "a", encoding="utf-8")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            self.handle = handle
            return self
        raise SyncError(f"busy: this key already holds {self.slots} waits; try again later")

    def __exit__(self, *exc) -> None:
        if self.handle is not None:
            self.handle.close()


def serve_key(args: argparse.Namespace) -> str:
    """The name a key's waits are counted under."""
    for kind, name in (("node", args.node), ("committer", args.pusher)):
        if name is not None:
            if not NAME.fullmatch(name):
                raise SyncError(f"the forced command's --{'node' if kind == 'node' else 'pusher'} is not a name")
            return f"{kind}-{name}"
    return "key"


def _serve(args: argparse.Namespace) -> int:
    command = os.environ.get("SSH_ORIGINAL_COMMAND", "")
    argv = serve_argv(command, args.repository, os.path.expanduser("~"))
    if argv[0] == "floatip-wait":
        with WaitSlot(args.repository, serve_key(args), args.wait_slots):
            tip = wait_for_change(args.repository, argv[1], gone=client_gone)
        if not client_gone():
            sys.stdout.write(tip + "\n")
        return 0
    env = {key: value for key, value in os.environ.items() if key != "FLOATIP_PUSHER"}
    if args.pusher:
        env["FLOATIP_PUSHER"] = args.pusher
    os.execvpe(argv[0], argv, env)
    return 1  # not reached


def serve(args: argparse.Namespace) -> int:
    """The forced command: whatever the client sent, one line on failure,
    never a traceback."""
    try:
        return _serve(args)
    except SyncError as exc:
        sys.stderr.write(f"floatip: {exc}\n")
    except OSError as exc:
        sys.stderr.write(f"floatip: the command failed: {exc.strerror or exc.__class__.__name__}\n")
    return 1


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
    sub.add_argument("--node", help="the node this key belongs to")
    sub.add_argument("--wait-slots", type=int, default=WAIT_SLOTS, help="waits this key may hold at once")
    args = parser.parse_args(argv)
    if args.command == "serve":
        return serve(args)
    if args.command == "hgrc":
        sys.stdout.write(repository_hgrc())
        return 0
    try:
        with open(args.config, encoding="utf-8") as handle:
            config = json.load(handle)
        if args.command == "status":
            sys.stdout.write(json.dumps(load_status(config["status"], config["node"]), indent=2, sort_keys=True) + "\n")
            return 0
        syncer = Syncer(config)
    except (OSError, ValueError, KeyError, SyncError) as exc:
        sys.stderr.write(f"floatip-config-sync: {args.config}: {exc}\n")
        return 2
    if args.command == "watch":
        syncer.watch()
        return 0
    status = syncer.sync(retry=args.retry)
    sys.stdout.write(json.dumps(status, indent=2, sort_keys=True) + "\n")
    return 1 if status["error"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
