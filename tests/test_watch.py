"""Reloading on change: the config by content at ``--config.auto-reload-interval`` (a
Kubernetes ConfigMap mount included), the web config and its certificate files always, and
``--web.disable-exporter-metrics``. Every check drives `serve` over real sockets and waits on
what /metrics or a TLS handshake shows, within a bound."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import os
import signal
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from exporter.simulators import AgiSimulator, ChaserSimulator, agi_row, chaser_row, iso
from exporter.web.watch import (
    ConfigWatcher,
    changed,
    config_files,
    digest,
    web_config_files,
)
from exporter.web.webconfig import load_web_config
from tests.conftest import Serve
from tests.harness import KEY, NOW, Exposition, settings_for
from tests.network import make_ca
from tests.test_cli import Server, run, serving, stop

LIMIT = 30.0
"""Seconds any awaited change may take before the test fails (a start on a busy machine
included: test_cli waits 15 s for readiness alone)."""


def target(name: str, provider: str, url: str) -> str:
    """One YAML target item."""
    return (
        f'  - name: {name}\n    provider: {provider}\n    base_url: {url}\n    api_key: "{KEY}"\n'
    )


def config_text(*targets: str, top: str = "") -> str:
    return f"poll_interval: 100ms\n{top}targets:\n" + "".join(targets)


@pytest.fixture
async def urls(served: Serve) -> dict[str, str]:
    """A Chaser and an AGI account on loopback."""
    return {
        "chaser": await served(
            ChaserSimulator(sessions=[chaser_row("c1", "running", iso(NOW))], api_key=KEY)
        ),
        "agi": await served(AgiSimulator(sessions=[agi_row("g1", "running", NOW)], api_key=KEY)),
    }


async def metrics_until(
    http: aiohttp.ClientSession, server: Server, predicate: Callable[[Exposition], bool]
) -> Exposition:
    """Scrape /metrics until ``predicate`` holds; fail after LIMIT or if `serve` exits."""
    last = "no answer"
    try:
        async with asyncio.timeout(LIMIT):
            while True:
                assert server.proc.returncode is None, server.stderr()
                try:
                    async with http.get(f"{server.base}/metrics") as response:
                        text = await response.text()
                        last = f"{response.status}"
                        if response.status == 200 and predicate(
                            exposition := Exposition.parse(text)
                        ):
                            return exposition
                except aiohttp.ClientConnectionError as exc:
                    last = repr(exc)
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(
            f"not seen within {LIMIT}s (last: {last}): {server.stderr()}"
        ) from None


def events(server: Server, name: str) -> list[dict[str, Any]]:
    """The JSON log events of `serve` named ``name`` (a last line still being written is
    left for the next look)."""
    lines = server.stderr().split("\n")[:-1]
    return [e for e in map(json.loads, lines) if e.get("event") == name]


async def events_until(server: Server, name: str, count: int) -> list[dict[str, Any]]:
    """Wait (bounded) until `serve` logged ``count`` events ``name``."""
    async with asyncio.timeout(LIMIT):
        while len(found := events(server, name)) < count:
            await asyncio.sleep(0.02)
    return found


def replace(path: Path, data: bytes) -> None:
    """Write ``path`` whole at once (a new file renamed over it), so that no check reads it
    half written; a ConfigMap's or Secret's mount swaps its files as atomically."""
    part = path.with_name(f".{path.name}.part")
    part.write_bytes(data)
    part.replace(path)


def reloads(exposition: Exposition, result: str) -> float | None:
    return exposition.get("sessions_exporter_config_reloads_total", result=result)


# --- what is watched ----------------------------------------------------------------------


def test_config_files_are_the_config_itself(tmp_path: Path) -> None:
    """The config's watched files: the config file (a key file is read at every poll)."""
    key_file = tmp_path / "key"
    key_file.write_text(KEY, encoding="utf-8")
    settings = settings_for({"name": "a", "provider": "chaser", "api_key_file": str(key_file)})

    assert [tmp_path / "c.yaml"] == config_files(settings, tmp_path / "c.yaml")


def test_config_files_include_each_targets_tls_files(tmp_path: Path) -> None:
    """A target's tls: CA, client certificate and key are watched with the config (they are
    read at load, so a renewed CA applies only by a reload); its key file is not."""
    ca = make_ca(tmp_path / "pki")
    client = ca.issue("client", client=True)
    key_file = tmp_path / "key"
    key_file.write_text(KEY, encoding="utf-8")
    tls = {"ca_file": str(ca.cert_file), "cert_file": str(client.cert), "key_file": str(client.key)}
    settings = settings_for(
        {"name": "a", "provider": "chaser", "api_key_file": str(key_file), "tls": tls}
    )

    assert [tmp_path / "c.yaml", ca.cert_file, client.cert, client.key] == (
        config_files(settings, tmp_path / "c.yaml")
    )


def test_digests_compare_content_not_mtime(tmp_path: Path) -> None:
    """Same bytes with a new mtime is no change; new bytes with the old mtime is one; a file
    that disappears is one; a path new to the list is only recorded."""
    path = tmp_path / "c.yaml"
    path.write_text("a\n", encoding="utf-8")
    before = digest([path])
    os.utime(path, (1, 1))
    same = digest([path])
    path.write_text("b\n", encoding="utf-8")
    os.utime(path, (1, 1))
    edited = digest([path])
    path.unlink()
    gone = digest([path, tmp_path / "new"])

    assert [] == changed(before, same)
    assert [path] == changed(same, edited)
    assert [path] == changed(edited, gone)
    assert None is gone[path]


async def test_a_change_already_reloaded_is_not_reloaded_again(tmp_path: Path) -> None:
    """A change applied by SIGHUP (the watcher's reload) is not reloaded again by the next
    check; a later change is, once; an unchanged file never is."""
    path = tmp_path / "c.yaml"
    path.write_text("one\n", encoding="utf-8")
    settings = settings_for({"name": "a", "provider": "chaser", "api_key": KEY})
    calls: list[str] = []

    async def reload() -> bool:
        calls.append(path.read_text(encoding="utf-8"))
        return True

    watcher = ConfigWatcher(
        path=path, settings=lambda: settings, interval=lambda: 1.0, reload=reload
    )
    first = await watcher.check()  # the baseline
    path.write_text("two\n", encoding="utf-8")
    assert await watcher.reload()  # SIGHUP
    after_sighup = await watcher.check()
    path.write_text("three\n", encoding="utf-8")
    edited = await watcher.check()
    unchanged = await watcher.check()

    assert (None, None, True, None) == (first, after_sighup, edited, unchanged)
    assert ["two\n", "three\n"] == calls


# --- the config -------------------------------------------------------------------------------


def configmap(directory: Path, text: str, version: int) -> None:
    """Publish ``text`` as the kubelet updates a ConfigMap volume: a new timestamped directory,
    then the ``..data`` symlink swapped to it in one rename; ``config.yaml`` is a symlink to
    ``..data/config.yaml`` that never changes."""
    data = directory / f"..2026_12_06_00_00_0{version}.000000001"
    data.mkdir()
    (data / "config.yaml").write_text(text, encoding="utf-8")
    new_link = directory / "..data_tmp"
    new_link.symlink_to(data.name)
    new_link.rename(directory / "..data")
    link = directory / "config.yaml"
    if not link.is_symlink():
        link.symlink_to("..data/config.yaml")


async def test_a_configmap_update_is_reloaded(tmp_path: Path, urls: dict[str, str]) -> None:
    """With --config.auto-reload-interval, a ConfigMap mount's ..data swap is reloaded; a
    broken config keeps the old one and counts one failed reload, however many checks see it;
    the next good config is reloaded again."""
    mount = tmp_path / "mount"
    mount.mkdir()
    configmap(mount, config_text(target("a", "chaser", urls["chaser"])), 1)
    path = mount / "config.yaml"
    flags = ("--config.auto-reload-interval", "50ms", "--log-format", "json")
    async with serving(tmp_path, path, extra=flags) as server, aiohttp.ClientSession() as http:
        first = await metrics_until(
            http, server, lambda m: m.get("sessions_target_up", target="a") == 1.0
        )
        two = config_text(target("a", "chaser", urls["chaser"]), target("g", "agi", urls["agi"]))
        configmap(mount, two, 2)
        added = await metrics_until(
            http, server, lambda m: m.get("sessions_target_up", target="g") == 1.0
        )
        configmap(mount, "targets: 7\n", 3)
        broken = await metrics_until(http, server, lambda m: reloads(m, "failure") == 1.0)
        configmap(mount, config_text(target("g", "agi", urls["agi"])), 4)
        removed = await metrics_until(
            http, server, lambda m: m.get("sessions_target_up", target="a") is None
        )
        await stop(server, signal.SIGTERM)

    assert 0 == server.proc.returncode, server.stderr()
    assert 1.0 == added.get("sessions_exporter_config_reloads_total", result="success")
    assert first.get("sessions_exporter_config_hash") != added.get("sessions_exporter_config_hash")
    assert 0.0 == broken.get("sessions_exporter_config_last_reload_successful")
    assert 1.0 == broken.get("sessions_target_up", target="g")  # the old config stays
    assert added.get("sessions_exporter_config_hash") == broken.get("sessions_exporter_config_hash")
    assert 2.0 == reloads(removed, "success")
    assert 1.0 == reloads(removed, "failure")
    assert 3 == len(events(server, "config.changed"))
    assert [str(path)] == events(server, "config.changed")[0]["files"]


async def test_the_config_key_turns_auto_reload_on(tmp_path: Path, urls: dict[str, str]) -> None:
    """config_auto_reload_interval in the file, without the flag, reloads an edit in place."""
    path = tmp_path / "c.yaml"
    top = "config_auto_reload_interval: 50ms\n"
    path.write_text(config_text(target("a", "chaser", urls["chaser"]), top=top), encoding="utf-8")
    async with serving(tmp_path, path) as server, aiohttp.ClientSession() as http:
        await metrics_until(http, server, lambda m: m.get("sessions_target_up", target="a") == 1.0)
        replace(path, config_text(target("g", "agi", urls["agi"]), top=top).encode())
        after = await metrics_until(
            http, server, lambda m: m.get("sessions_target_up", target="g") == 1.0
        )
        await stop(server, signal.SIGTERM)

    assert None is after.get("sessions_target_up", target="a")
    assert 1.0 == reloads(after, "success")
    assert 0.0 == reloads(after, "failure")


async def test_check_config_locates_a_bad_interval(tmp_path: Path) -> None:
    """A negative or unreadable config_auto_reload_interval is a located check-config error;
    a bad --config.auto-reload-interval is a usage error; both exit 2."""
    path = tmp_path / "c.yaml"
    path.write_text(
        f"config_auto_reload_interval: -1\ntargets:\n{target('a', 'chaser', 'http://x')}",
        encoding="utf-8",
    )
    located = await run("check-config", "--config", str(path))
    path.write_text(
        f"config_auto_reload_interval: soon\ntargets:\n{target('a', 'chaser', 'http://x')}",
        encoding="utf-8",
    )
    unreadable = await run("check-config", "--config", str(path))
    flag = await run("serve", "--config", str(path), "--config.auto-reload-interval", "2y")

    assert 2 == located.returncode
    assert (
        f"{path}:1:30: config_auto_reload_interval: invalid duration -1: must be a finite, "
        "non-negative time\n"
    ) == located.stderr
    assert 2 == unreadable.returncode
    assert f"{path}:1:30: config_auto_reload_interval: invalid duration" in unreadable.stderr
    assert 2 == flag.returncode
    assert "--config.auto-reload-interval: must be 0 (off) to a year, got '2y'" in flag.stderr


# --- the exporter's own series ---------------------------------------------------------------


async def test_disable_exporter_metrics(tmp_path: Path, urls: dict[str, str]) -> None:
    """--web.disable-exporter-metrics drops process_*, python_* and python_gc_*; the
    exporter's own sessions_exporter_* series stay (the dropped log lines among them)."""
    path = tmp_path / "c.yaml"
    path.write_text(config_text(target("a", "chaser", urls["chaser"])), encoding="utf-8")
    names: dict[bool, set[str]] = {}
    for disabled in (False, True):
        flags = ("--web.disable-exporter-metrics",) if disabled else ()
        async with serving(tmp_path, path, extra=flags) as server, aiohttp.ClientSession() as http:
            exposition = await metrics_until(
                http, server, lambda m: m.get("sessions_target_up", target="a") == 1.0
            )
            names[disabled] = exposition.names()
            await stop(server, signal.SIGTERM)
        assert 0 == server.proc.returncode

    runtime = {n for n in names[False] if n.startswith(("process_", "python_"))}
    assert {"python_info", "python_gc_objects_collected_total"} <= runtime
    assert set() == {n for n in names[True] if n.startswith(("process_", "python_"))}
    assert names[False] - runtime == names[True]
    assert "sessions_exporter_log_lines_dropped_total" in names[True]  # the exporter's own


async def test_disable_exporter_metrics_takes_no_value(tmp_path: Path) -> None:
    """--web.disable-exporter-metrics is a switch: given a value, it is a usage error."""
    result = await run(
        "serve", "--config", str(tmp_path / "c.yaml"), "--web.disable-exporter-metrics=no"
    )

    assert 2 == result.returncode
    assert "--web.disable-exporter-metrics: ignored explicit argument 'no'" in result.stderr


# --- certificate renewal -----------------------------------------------------------------------


def certificate(common_name: str) -> tuple[bytes, bytes, bytes]:
    """A self-signed server certificate for 127.0.0.1: (cert PEM, key PEM, cert DER)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return (
        cert.public_bytes(serialization.Encoding.PEM),
        key_pem,
        cert.public_bytes(serialization.Encoding.DER),
    )


def trusting(*certs: bytes) -> ssl.SSLContext:
    """A client context trusting exactly these self-signed certificates (PEM)."""
    return ssl.create_default_context(cadata=b"".join(certs).decode())


async def served_certificate(port: int) -> bytes:
    """The DER certificate a new TLS connection to ``port`` is given."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
    try:
        ssl_object = writer.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True)
    finally:
        writer.close()
        await writer.wait_closed()
    assert der is not None
    return bytes(der)


@asynccontextmanager
async def tls_serving(
    tmp_path: Path, config: Path, web_yml: Path, *flags: str
) -> AsyncIterator[Server]:
    """`serve` with ``web_yml``, its base URL in https."""
    extra = ("--web.config.file", str(web_yml), "--log-format", "json", *flags)
    async with serving(tmp_path, config, extra=extra) as server:
        yield Server(server.proc, server.base.replace("http:", "https:"), server.stderr_path)


async def test_a_renewed_certificate_is_served_without_a_restart(
    tmp_path: Path, urls: dict[str, str]
) -> None:
    """Certificate A, then B written over its files: new connections get B; a keep-alive
    connection opened under A goes on answering; the process never stops. A key that does
    not match is refused (logged) and B stays."""
    a_cert, a_key, a_der = certificate("cert A")
    b_cert, b_key, b_der = certificate("cert B")
    tls = tmp_path / "tls"
    tls.mkdir()
    (tls / "tls.crt").write_bytes(a_cert)
    (tls / "tls.key").write_bytes(a_key)
    web_yml = tmp_path / "web.yml"
    web_yml.write_text(
        "tls_server_config:\n  cert_file: tls/tls.crt\n  key_file: tls/tls.key\n",
        encoding="utf-8",
    )
    path = tmp_path / "c.yaml"
    path.write_text(config_text(target("a", "chaser", urls["chaser"])), encoding="utf-8")
    flags = ("--config.auto-reload-interval", "50ms")
    async with tls_serving(tmp_path, path, web_yml, *flags) as server:
        port = int(server.base.rsplit(":", 1)[1])
        connector = aiohttp.TCPConnector(ssl=trusting(a_cert, b_cert), limit=1)
        async with aiohttp.ClientSession(connector=connector) as kept:
            await metrics_until(kept, server, lambda m: m.get("sessions_target_up") == 1.0)
            first = await served_certificate(port)

            replace(tls / "tls.key", b_key)  # both files, one after the other
            replace(tls / "tls.crt", b_cert)
            async with asyncio.timeout(LIMIT):
                while (renewed := await served_certificate(port)) != b_der:
                    await asyncio.sleep(0.02)
            async with kept.get(f"{server.base}/metrics") as response:
                kept_status = response.status
            strict = aiohttp.TCPConnector(ssl=trusting(b_cert))
            async with (
                aiohttp.ClientSession(connector=strict) as http,
                http.get(f"{server.base}/metrics") as response,
            ):
                new_status = response.status

            # a reload_failed may already be logged if a check fell between the two writes
            earlier = len(events(server, "web_config.reload_failed"))
            replace(tls / "tls.key", a_key)  # a key that is not the certificate's
            failed = await events_until(server, "web_config.reload_failed", earlier + 1)
            after_failure = await served_certificate(port)
        pid = server.proc.pid
        assert None is server.proc.returncode
        await stop(server, signal.SIGTERM)

    assert a_der == first
    assert b_der == renewed
    assert 200 == kept_status
    assert 200 == new_status
    assert b_der == after_failure
    assert "the private key does not match the certificate" in failed[-1]["problems"][0]
    assert 1 == len(events(server, "web_config.reloaded"))
    assert 1 == len(events(server, "server.started"))
    assert pid == server.proc.pid
    assert 0 == server.proc.returncode


async def test_basic_auth_users_follow_the_web_config(tmp_path: Path, urls: dict[str, str]) -> None:
    """A web config edited to add basic auth applies to the next request; a change of a
    setting only a restart can apply (the minimum TLS version) is refused and logged."""
    from tests.test_webconfig import ALICE_HASH, ALICE_PASSWORD, basic  # noqa: PLC0415

    cert, key, _ = certificate("server")
    (tmp_path / "tls.crt").write_bytes(cert)
    (tmp_path / "tls.key").write_bytes(key)
    tls = "tls_server_config:\n  cert_file: tls.crt\n  key_file: tls.key\n"
    web_yml = tmp_path / "web.yml"
    web_yml.write_text(tls, encoding="utf-8")
    path = tmp_path / "c.yaml"
    path.write_text(config_text(target("a", "chaser", urls["chaser"])), encoding="utf-8")
    flags = ("--config.auto-reload-interval", "50ms")
    async with tls_serving(tmp_path, path, web_yml, *flags) as server:
        connector = aiohttp.TCPConnector(ssl=trusting(cert))
        async with aiohttp.ClientSession(connector=connector) as http:
            await metrics_until(http, server, lambda m: m.get("sessions_target_up") == 1.0)
            replace(web_yml, f"{tls}basic_auth_users:\n  alice: {ALICE_HASH}\n".encode())
            async with asyncio.timeout(LIMIT):
                while True:
                    async with http.get(f"{server.base}/metrics") as response:
                        if response.status == 401:
                            break
                    await asyncio.sleep(0.02)
            async with http.get(
                f"{server.base}/metrics", headers=basic("alice", ALICE_PASSWORD)
            ) as response:
                alice = response.status
            replace(
                web_yml,
                f"{tls}  min_version: TLS13\nbasic_auth_users:\n  bob: {ALICE_HASH}\n".encode(),
            )
            refused = await events_until(server, "web_config.reload_failed", 1)
            async with http.get(
                f"{server.base}/metrics", headers=basic("alice", ALICE_PASSWORD)
            ) as response:
                still_alice = response.status
        await stop(server, signal.SIGTERM)

    assert 200 == alice
    assert 200 == still_alice
    assert ["tls_server_config.min_version changed: restart to apply it"] == refused[0]["problems"]


def test_web_config_files_are_the_file_and_its_pem_files(tmp_path: Path) -> None:
    """The web config's watched files: itself, then its cert, key and client CA, relative to
    its directory."""
    cert, key, _ = certificate("server")
    (tmp_path / "tls.crt").write_bytes(cert)
    (tmp_path / "tls.key").write_bytes(key)
    (tmp_path / "ca.crt").write_bytes(cert)
    web_yml = tmp_path / "web.yml"
    web_yml.write_text(
        "tls_server_config:\n  cert_file: tls.crt\n  key_file: tls.key\n"
        "  client_ca_file: ca.crt\n  client_auth_type: RequireAndVerifyClientCert\n",
        encoding="utf-8",
    )

    assert [web_yml, tmp_path / "tls.crt", tmp_path / "tls.key", tmp_path / "ca.crt"] == (
        web_config_files(load_web_config(web_yml))
    )


async def test_a_new_client_ca_applies_to_new_connections(
    tmp_path: Path, urls: dict[str, str]
) -> None:
    """Mutual TLS: the client CA file replaced by another CA's, a client certificate of the
    new CA is accepted on the next connection and one of the old CA refused."""
    from tests.test_webconfig import _issue, _name, _write  # noqa: PLC0415

    cas = {}
    clients = {}
    for label in ("old", "new"):
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca = _issue(f"{label} CA", ca_key, None)
        cas[label] = ca.public_bytes(serialization.Encoding.PEM)
        client_key = ec.generate_private_key(ec.SECP256R1())
        client = _issue(
            f"{label} client", client_key, (_name(f"{label} CA"), ca_key), sans=None, usage=None
        )
        clients[label] = _write(tmp_path, f"{label}-client", client, client_key)
    cert, key, _ = certificate("server")
    (tmp_path / "tls.crt").write_bytes(cert)
    (tmp_path / "tls.key").write_bytes(key)
    (tmp_path / "client-ca.crt").write_bytes(cas["old"])
    web_yml = tmp_path / "web.yml"
    web_yml.write_text(
        "tls_server_config:\n  cert_file: tls.crt\n  key_file: tls.key\n"
        "  client_ca_file: client-ca.crt\n  client_auth_type: RequireAndVerifyClientCert\n",
        encoding="utf-8",
    )
    path = tmp_path / "c.yaml"
    path.write_text(config_text(target("a", "chaser", urls["chaser"])), encoding="utf-8")

    async def status_as(label: str) -> int | str:
        context = trusting(cert)
        context.load_cert_chain(*map(str, clients[label]))
        connector = aiohttp.TCPConnector(ssl=context, force_close=True)
        try:
            async with (
                aiohttp.ClientSession(connector=connector) as http,
                http.get(f"{server.base}/healthz") as response,
            ):
                return response.status
        except aiohttp.ClientError as exc:
            return type(exc).__name__

    async with tls_serving(tmp_path, path, web_yml, "--config.auto-reload-interval", "50ms") as (
        server
    ):
        async with asyncio.timeout(LIMIT):
            while (before := await status_as("old")) != 200:
                await asyncio.sleep(0.02)
        refused_before = await status_as("new")
        replace(tmp_path / "client-ca.crt", cas["new"])
        async with asyncio.timeout(LIMIT):
            while (after := await status_as("new")) != 200:
                await asyncio.sleep(0.02)
        refused_after = await status_as("old")
        await stop(server, signal.SIGTERM)

    assert 200 == before
    assert 200 == after
    assert 200 != refused_before
    assert 200 != refused_after
    assert 1 == len(events(server, "server.started"))
