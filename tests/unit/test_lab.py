"""floatip_testing.lab, with docker stood in for: a freeze that the kernel
could not finish is tried again, every other docker error is the caller's;
a node that stops while asked which addresses it holds holds none."""

from __future__ import annotations

import pytest

from floatip_testing import lab

UNABLE = "OCI runtime pause failed: unable to freeze: unknown"


class Answers(list):
    """What each `docker pause` says in turn ('' for success), and the
    docker calls made."""

    calls: list[tuple[str, ...]]


@pytest.fixture
def answers(monkeypatch: pytest.MonkeyPatch) -> Answers:
    said = Answers()
    calls: list[tuple[str, ...]] = []

    def docker(*args: str, **_: object) -> str:
        calls.append(args)
        if args[0] == "inspect":
            return "false\n"
        error = said.pop(0)
        if error:
            raise lab.DockerError(f"docker pause ... failed (rc 1): {error}")
        return ""

    monkeypatch.setattr(lab, "docker", docker)
    monkeypatch.setattr(lab.time, "sleep", lambda _: None)
    said.calls = calls
    return said


def pauses(answers: Answers) -> int:
    return sum(1 for call in answers.calls if call[0] == "pause")


def test_a_freeze_that_could_not_finish_is_tried_again(answers: Answers) -> None:
    answers.extend([UNABLE, UNABLE, ""])
    lab.pause("node1")
    assert pauses(answers) == 3


def test_a_freeze_that_never_finishes_is_raised(answers: Answers) -> None:
    answers.extend([UNABLE] * lab.PAUSE_TRIES)
    with pytest.raises(lab.DockerError, match="unable to freeze"):
        lab.pause("node1")
    assert pauses(answers) == lab.PAUSE_TRIES


def test_any_other_error_is_raised_at_once(answers: Answers) -> None:
    answers.append("No such container: node1")
    with pytest.raises(lab.DockerError, match="No such container"):
        lab.pause("node1")
    assert pauses(answers) == 1


def test_a_node_that_stops_while_asked_holds_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    states = iter(["true false", "false false"])

    def docker(*args: str, **_: object) -> str:
        if args[0] == "inspect":
            return next(states)
        raise lab.DockerError("docker exec ... failed (rc 1): container is not running")

    monkeypatch.setattr(lab, "docker", docker)
    assert lab.holds("node1", "172.30.80.101") is False


def test_a_running_node_that_cannot_be_asked_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def docker(*args: str, **_: object) -> str:
        if args[0] == "inspect":
            return "true false"
        raise lab.DockerError("docker exec ... failed (rc 126): ip: not found")

    monkeypatch.setattr(lab, "docker", docker)
    with pytest.raises(lab.DockerError, match="ip: not found"):
        lab.holds("node1", "172.30.80.101")


IP_O_ADDRESS = """1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever
1: lo    inet6 ::1/128 scope host noprefixroute \\       valid_lft forever preferred_lft forever
2: eth0    inet 172.30.80.11/24 brd 172.30.80.255 scope global eth0\\       valid_lft forever preferred_lft forever
2: eth0    inet 172.30.80.101/24 scope global secondary eth0\\       valid_lft forever preferred_lft forever
"""


def test_the_addresses_of_a_running_node_are_read_in_one_look(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, ...]] = []

    def docker(*args: str, **_: object) -> str:
        calls.append(args)
        return "true false" if args[0] == "inspect" else IP_O_ADDRESS

    monkeypatch.setattr(lab, "docker", docker)
    assert lab.addresses("node1") == {"127.0.0.1", "::1", "172.30.80.11", "172.30.80.101"}
    assert [call[0] for call in calls] == ["inspect", "exec"]
    assert lab.holds("node1", "172.30.80.101") and not lab.holds("node1", "172.30.80.10")
