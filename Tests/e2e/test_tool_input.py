"""Bad input to the user-facing commands: each stops with exit status 64 and an `error:` line naming the file, the
field or line:column, and what was expected; `--version` answers on every command; a DNS failure says only what
the resolver said."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

import porthole
from porthole import CA, Controller, Stack

VERSIONED = ["porthole-controller", "porthole-agent", "porthole-bench-agents"]


def run(*argv: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), capture_output=True, timeout=timeout, text=True)


@pytest.mark.parametrize("command", VERSIONED)
def test_version(command: str) -> None:
    result = run(porthole.binary(command), "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{command} ") and result.stdout.count("\n") == 1, result.stdout
    assert "--version" in run(porthole.binary(command), "--help").stdout


def agent_argv(ca: CA, controller_address: str, services: Path, ca_cert: Path | None = None) -> list[str]:
    return [porthole.binary("porthole-agent"), "--controller", controller_address,
            "--cert", str(ca.agent_cert()), "--key", str(ca.agent_key()),
            "--ca-cert", str(ca_cert or ca.cert), "--services", str(services)]


@pytest.mark.parametrize("text, message", [
    ('{"services": [\n  {"type": "jenkins", "name": "a", "url": "http://a"},\n]}\n',
     ":2:54: trailing comma before `]`; JSON allows none"),
    ('{"services": [\n  {"type": "jenkins" "name": "a"}\n]}\n', ":2:22: expected `,` or `}` in an object, found `\"`"),
    ('{"services": []}\n', ": services: no services: list at least one"),
    ('{"services": [{"type": "jenkins", "name": "a", "url": "ftp://a"}]}\n', ": services[0].url: "),
], ids=["trailing-comma", "missing-comma", "empty-list", "bad-url"])
def test_a_bad_services_file_exits_64_naming_file_and_place(stack: Stack, tmp_path: Path, text: str,
                                                            message: str) -> None:
    services = tmp_path / "services.json"
    services.write_text(text)
    result = run(*agent_argv(stack.ca, stack.controller.agent_address, services))
    assert result.returncode == 64, result.stderr
    assert f"error: {services}{message}" in result.stderr, result.stderr


def test_a_ca_file_holding_a_key_exits_64_saying_what_was_expected(stack: Stack) -> None:
    result = run(*agent_argv(stack.ca, stack.controller.agent_address, stack.agent.services_file,
                             ca_cert=stack.ca.key))
    assert result.returncode == 64, result.stderr
    assert (f"error: {stack.ca.key} (the CA certificate): expected a PEM CERTIFICATE, found a PRIVATE KEY"
            in result.stderr), result.stderr


def test_a_controller_given_a_key_as_its_ca_exits_64(stack: Stack, tmp_path: Path) -> None:
    result = run(porthole.binary("porthole-controller"), "--ca-cert", str(stack.ca.key), "--ca-key",
                 str(stack.ca.key), "--agent-listen", "127.0.0.1:0", "--service-listen", "127.0.0.1:0",
                 "--control-listen", "127.0.0.1:0")
    assert result.returncode == 64, result.stderr
    assert f"{stack.ca.key} (the CA certificate): expected a PEM CERTIFICATE, found a PRIVATE KEY" in result.stderr


def test_a_controller_name_that_does_not_resolve_is_logged_with_the_resolvers_words(stack: Stack,
                                                                                    tmp_path: Path) -> None:
    process = porthole.ManagedProcess(
        "agent-nowhere", agent_argv(stack.ca, "nowhere.invalid:8441", stack.agent.services_file), tmp_path)
    try:
        entry = process.wait_for_logs("resolving a controller failed", timeout=10)[0]
    finally:
        process.stop()
    assert entry["error"].startswith("cannot resolve nowhere.invalid: "), entry
    assert "No route to host" not in entry["error"] and "getaddrinfo" not in entry["error"], entry
