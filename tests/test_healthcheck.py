"""`session-exporter healthcheck` against a real `serve`, with and without TLS and basic auth."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from ssl import SSLContext

import aiohttp
import pytest

from exporter.simulators import ChaserSimulator, chaser_row
from tests.conftest import Serve
from tests.harness import KEY, console_script, free_port
from tests.test_cli import Result, Server, child_env, run
from tests.test_webconfig import ALICE_HASH, Pki, pki, tls_config, write_web_config

__all__ = ["pki"]  # the session-scoped PKI fixture, shared with the web config tests


async def config_for(tmp_path: Path, served: Serve, port: int) -> Path:
    """A config whose ``listen`` is a loopback port: the healthcheck reads it from there."""
    chaser = ChaserSimulator(sessions=[chaser_row("c1", "running", 1_700_000_000.0)], api_key=KEY)
    path = tmp_path / "config.yaml"
    path.write_text(
        f'listen: "127.0.0.1:{port}"\n'
        f"targets:\n  - name: ch\n    provider: chaser\n    base_url: {await served(chaser)}\n"
        f"    api_key: {KEY}\n",
        encoding="utf-8",
    )
    return path


@asynccontextmanager
async def serving(
    tmp_path: Path, config: Path, port: int, *flags: str, ssl: SSLContext | None = None
) -> AsyncIterator[Server]:
    """`serve --config FILE` (listening where the file says), once its /healthz answers.

    ``ssl`` is the client context to wait with when the server speaks TLS.
    """
    err_path = tmp_path / "serve.err"
    with err_path.open("wb") as err:
        proc = await asyncio.create_subprocess_exec(
            console_script(),
            "serve",
            "--config",
            str(config),
            *flags,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=err,
            env=child_env(),
        )
    server = Server(proc, f"{'https' if ssl else 'http'}://127.0.0.1:{port}", err_path)
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ssl or False)) as http:
            await until_up(http, server)
        yield server
    finally:
        if proc.returncode is None:
            proc.terminate()
            await proc.wait()


async def until_up(http: aiohttp.ClientSession, server: Server) -> None:
    """Wait (bounded) until /healthz answers 200; fail at once if the server exits."""
    async with asyncio.timeout(15):
        while True:
            assert server.proc.returncode is None, server.stderr()
            try:
                async with http.get(f"{server.base}/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)


async def healthcheck(*args: str) -> Result:
    return await run("healthcheck", *args)


async def test_healthy_over_plain_http_at_the_configs_listen(tmp_path: Path, served: Serve) -> None:
    """The check asks the port the config's listen names, and exits 0 on /healthz 200."""
    port = free_port()
    config = await config_for(tmp_path, served, port)
    async with serving(tmp_path, config, port):
        result = await healthcheck("--config", str(config))

    assert (0, f"healthy: http://127.0.0.1:{port}/healthz answered 200\n") == (
        result.returncode,
        result.stdout,
    )


async def test_unhealthy_when_nothing_listens(tmp_path: Path, served: Serve) -> None:
    """No server on the configured port: exit 1 with one line saying why."""
    port = free_port()
    config = await config_for(tmp_path, served, port)

    result = await healthcheck("--config.file", str(config))

    assert 1 == result.returncode
    assert [f"unhealthy: http://127.0.0.1:{port}/healthz failed: Connection refused"] == (
        result.stderr.splitlines()
    )


async def test_listen_flag_and_environment_win_over_the_config(
    tmp_path: Path, served: Serve
) -> None:
    """--web.listen-address, then SESSION_EXPORTER_LISTEN, then the file (as serve reads them)."""
    port, other = free_port(), free_port()
    config = await config_for(tmp_path, served, other)
    async with serving(tmp_path, config, port, "--listen", f"127.0.0.1:{port}"):
        flag = await healthcheck("--config", str(config), "--web.listen-address", f":{port}")
        env = await run(
            "healthcheck",
            "--config",
            str(config),
            env={"SESSION_EXPORTER_LISTEN": f"127.0.0.1:{port}"},
        )
        file = await healthcheck("--config", str(config))

    assert 0 == flag.returncode, flag.output  # ":PORT" (all interfaces) is asked on loopback
    assert 0 == env.returncode, env.output
    assert 1 == file.returncode


async def test_tls_and_basic_auth_from_the_web_config(
    tmp_path: Path, pki: Pki, served: Serve
) -> None:
    """With the same web config as serve the check speaks TLS; /healthz needs no password."""
    port = free_port()
    config = await config_for(tmp_path, served, port)
    web = write_web_config(
        tmp_path, tls_config(pki) + f"basic_auth_users:\n  alice: {ALICE_HASH}\n"
    )
    async with serving(
        tmp_path, config, port, "--web.config.file", str(web), ssl=pki.client_context()
    ):
        with_web = await healthcheck("--config", str(config), "--web.config.file", str(web))
        from_env = await run(
            "healthcheck",
            "--config",
            str(config),
            env={"SESSION_EXPORTER_WEB_CONFIG_FILE": str(web)},
        )
        plain = await healthcheck("--config", str(config))

    assert (0, f"healthy: https://127.0.0.1:{port}/healthz answered 200\n") == (
        with_web.returncode,
        with_web.stdout,
    )
    assert 0 == from_env.returncode, from_env.output
    assert 1 == plain.returncode  # plain HTTP to a TLS port is not an answer


async def test_mutual_tls_server_counts_as_up(tmp_path: Path, pki: Pki, served: Serve) -> None:
    """A server that requires client certificates completes the handshake: it is alive.

    Without a server, the same check fails.
    """
    port = free_port()
    config = await config_for(tmp_path, served, port)
    web = write_web_config(
        tmp_path,
        tls_config(
            pki, "client_auth_type: RequireAndVerifyClientCert", f"client_ca_file: {pki.ca}"
        ),
    )
    client = pki.client_context(pki.client_cert, pki.client_key)
    async with serving(tmp_path, config, port, "--web.config.file", str(web), ssl=client):
        result = await healthcheck("--config", str(config), "--web.config.file", str(web))

    assert (
        f"healthy: https://127.0.0.1:{port}/healthz completed a TLS handshake "
        "(it requires client certificates, so no request)\n" == result.stdout
    ), result.stderr
    stopped = await healthcheck("--config", str(config), "--web.config.file", str(web))
    assert 1 == stopped.returncode


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--config", "/nonexistent/config.yaml"), "cannot read: No such file or directory"),
        (("--web.listen-address", "nope"), "listen must be HOST:PORT, got 'nope'"),
    ],
)
async def test_an_unreadable_config_is_unhealthy(args: tuple[str, ...], message: str) -> None:
    """A config the check cannot read exits 1 (never 2, which Docker reserves) and says why."""
    result = await healthcheck(*args)
    assert 1 == result.returncode
    assert 1 == len(result.stderr.splitlines())
    assert message in result.stderr
