"""The read-only S3-backed SFTP server, driven by real SSH clients (asyncssh and OpenSSH) against moto."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import shutil
import socket
import stat
import subprocess
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import asyncssh
import boto3
import pytest
from moto import mock_aws

from meterflow.localcloud.sftp_server import S3SftpServer, normalize_virtual_path
from meterflow.localcloud.ssh_keys import (
    SshKeyPair,
    generate_ssh_keypair,
    host_key_fingerprint,
    known_hosts_line,
    load_or_create_host_key,
    write_known_hosts,
)

T = TypeVar("T")

BUCKET = "meterflow-hes-exports"
ROOT_PREFIX = "exports"
USERNAME = "sftp-user"
REQUEST_ID = "req-0001"
BIG_NAME = "run-1700000000000-part-r-00000.gz"
BIG_PATH = f"{REQUEST_ID}/{BIG_NAME}"
BIG_SIZE = 20 * 1024 * 1024 + 12345  # not a multiple of the read-ahead block, so the tail block is short
SMALL_PATH = f"{REQUEST_ID}/run-1700000000000-part-r-00001.gz"
SMALL_BODY = b"meter_id,ts,kwh\nM-1,2024-01-01T00:00:00Z,0.25\n"
NESTED_PATH = "req-0002/nested/run-1700000000001-part-r-00000.gz"
# A sibling whose name extends the root prefix: a prefix match without the trailing "/" would leak it.
SECRET_KEY = "exports-private/secret.gz"
SECRET_BODY = b"must never be served"
LISTING_PAGE_SIZE = 3  # forces every directory listing through several list_objects_v2 pages


class ObservedS3Client:
    """Delegates to a boto3 S3 client, records GetObject ranges and shrinks listing pages."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.get_ranges: list[str] = []
        self.failing_gets = 0

    def list_objects_v2(self, **kwargs: Any) -> Mapping[str, Any]:
        kwargs.setdefault("MaxKeys", LISTING_PAGE_SIZE)
        result: Mapping[str, Any] = self._inner.list_objects_v2(**kwargs)
        return result

    def get_object(self, **kwargs: Any) -> Mapping[str, Any]:
        self.get_ranges.append(str(kwargs.get("Range", "")))
        if self.failing_gets > 0:
            self.failing_gets -= 1
            raise ConnectionError("simulated S3 outage at https://s3.internal/secret-bucket")
        result: Mapping[str, Any] = self._inner.get_object(**kwargs)
        return result


@pytest.fixture(scope="module")
def big_body() -> bytes:
    # Seeded, so a failure reproduces; random so that a misplaced block cannot compare equal.
    return random.Random(20240101).randbytes(BIG_SIZE)


@pytest.fixture(scope="module")
def s3(big_body: bytes) -> Iterator[Any]:
    """GIVEN a bucket with exports under the root prefix and a secret beside it."""
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        objects = {
            f"{ROOT_PREFIX}/{BIG_PATH}": big_body,
            f"{ROOT_PREFIX}/{SMALL_PATH}": SMALL_BODY,
            f"{ROOT_PREFIX}/{NESTED_PATH}": b"nested",
            f"{ROOT_PREFIX}/req-0003/a.gz": b"a",
            f"{ROOT_PREFIX}/req-0003/b.gz": b"b",
            f"{ROOT_PREFIX}/req-0003/c.gz": b"c",
            f"{ROOT_PREFIX}/req-0003/d.gz": b"d",
            SECRET_KEY: SECRET_BODY,
        }
        for key, body in objects.items():
            client.put_object(Bucket=BUCKET, Key=key, Body=body)
        yield client


@pytest.fixture(scope="module")
def user_key() -> SshKeyPair:
    return generate_ssh_keypair(comment="hes-simulator")


@pytest.fixture(scope="module")
def stranger_key() -> SshKeyPair:
    return generate_ssh_keypair()


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sftp-state")


@pytest.fixture(scope="module")
def observed_s3(s3: Any) -> ObservedS3Client:
    return ObservedS3Client(s3)


@pytest.fixture(scope="module")
def server(observed_s3: ObservedS3Client, user_key: SshKeyPair, state_dir: Path) -> Iterator[S3SftpServer]:
    """GIVEN the server on an ephemeral port, serving the root prefix to one key."""
    sftp_server = S3SftpServer(
        observed_s3,
        bucket=BUCKET,
        root_prefix=ROOT_PREFIX,
        username=USERNAME,
        authorized_public_keys=lambda: [user_key.public_openssh],
        host_key_path=state_dir / "ssh_host_key",
        port=0,
    )
    sftp_server.start()
    yield sftp_server
    sftp_server.stop()


@pytest.fixture(scope="module")
def known_hosts(server: S3SftpServer, state_dir: Path) -> Path:
    path = state_dir / "known_hosts"
    server.write_known_hosts(path)
    return path


SftpAction = Callable[[asyncssh.SFTPClient], Awaitable[T]]


async def _connect_and_run(
    port: int, known_hosts: Path, key_pem: str, username: str, action: SftpAction[T]
) -> T:
    async with (
        asyncssh.connect(
            "127.0.0.1",
            port=port,
            username=username,
            client_keys=[asyncssh.import_private_key(key_pem)],
            known_hosts=str(known_hosts),
            agent_path=None,
            config=None,
            preferred_auth="publickey",
        ) as conn,
        conn.start_sftp_client() as sftp,
    ):
        return await action(sftp)


@pytest.fixture
def run_sftp(server: S3SftpServer, known_hosts: Path, user_key: SshKeyPair) -> Callable[..., Any]:
    """Run one async action in a fresh, host-key-verified SFTP session."""

    def run(action: SftpAction[T], *, key_pem: str | None = None, username: str = USERNAME) -> T:
        pem = key_pem if key_pem is not None else user_key.private_pem
        return asyncio.run(_connect_and_run(server.port, known_hosts, pem, username, action))

    return run


def _names(entries: list[asyncssh.SFTPName]) -> dict[str, asyncssh.SFTPAttrs]:
    return {str(entry.filename): entry.attrs for entry in entries if entry.filename not in (".", "..")}


# --- key material -----------------------------------------------------------------------------


def test_generated_user_key_is_traditional_pem_rsa_3072(user_key: SshKeyPair) -> None:
    # GIVEN a freshly generated key pair
    # THEN the private half is the PEM OpenSSH's `sftp -i` reads and the public half an ssh-rsa line
    assert user_key.private_pem.startswith("-----BEGIN RSA PRIVATE KEY-----\n")
    assert user_key.public_openssh.startswith("ssh-rsa AAAA")
    private = asyncssh.import_private_key(user_key.private_pem)
    public = asyncssh.import_public_key(user_key.public_openssh)
    assert private.public_data == public.public_data
    assert private.pyca_key.key_size == 3072


def test_host_key_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    # GIVEN no host key file
    path = tmp_path / "state" / "ssh_host_key"
    # WHEN it is loaded twice
    first = load_or_create_host_key(path)
    second = load_or_create_host_key(path)
    # THEN it was created private, and the second load returns the same key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert first.public_data == second.public_data
    assert host_key_fingerprint(first).startswith("SHA256:")


def test_known_hosts_line_pins_host_and_port(tmp_path: Path) -> None:
    # GIVEN a host key
    key = load_or_create_host_key(tmp_path / "ssh_host_key")
    # WHEN a known_hosts file is written for a non-default port
    line = write_known_hosts(tmp_path / "known_hosts", key, port=2222)
    # THEN it uses OpenSSH's "[host]:port" form and asyncssh matches it to exactly that endpoint
    assert line.startswith("[127.0.0.1]:2222 ssh-ed25519 ")
    assert (tmp_path / "known_hosts").read_text() == line + "\n"
    assert known_hosts_line(key, port=22).startswith("127.0.0.1 ssh-ed25519 ")
    known = asyncssh.import_known_hosts(line)
    assert {k.public_data for k in known.match("127.0.0.1", "127.0.0.1", 2222)[0]} == {key.public_data}
    assert not known.match("127.0.0.1", "127.0.0.1", 2223)[0]


@pytest.mark.parametrize(
    ("client_path", "expected"),
    [
        (b"", "/"),
        (b".", "/"),
        (b"..", "/"),
        (b"/../../", "/"),
        (b"../exports-private/secret.gz", "/exports-private/secret.gz"),
        (b"//req/./a/../b", "/req/b"),
        (b"\xff", None),
        (b"a\x00b", None),
    ],
)
def test_client_paths_never_climb_above_the_root(client_path: bytes, expected: str | None) -> None:
    # WHEN a client path is normalized THEN ".." stops at "/", as under chroot
    assert normalize_virtual_path(client_path) == expected


# --- browsing ---------------------------------------------------------------------------------


def test_ls_lists_directories_inferred_from_prefixes(run_sftp: Callable[..., Any]) -> None:
    # WHEN the user lists "/" and a request directory
    async def action(sftp: asyncssh.SFTPClient) -> tuple[Any, Any, Any, str]:
        root = _names(await sftp.readdir("/"))
        request = _names(await sftp.readdir(REQUEST_ID))
        paged = _names(await sftp.readdir("req-0003"))
        return root, request, paged, await sftp.realpath(".")

    root, request, paged, cwd = run_sftp(action)
    # THEN the root shows the request prefixes as directories, and nothing from outside the root
    assert cwd == "/"
    assert set(root) == {"req-0001", "req-0002", "req-0003"}
    assert all(stat.S_ISDIR(attrs.permissions) for attrs in root.values())
    # AND a request directory shows its files with sizes, read-only
    assert set(request) == {BIG_NAME, SMALL_PATH.split("/")[1]}
    assert request[BIG_NAME].size == BIG_SIZE
    assert request[BIG_NAME].permissions == stat.S_IFREG | 0o444
    # AND a listing longer than one S3 page is complete
    assert set(paged) == {"a.gz", "b.gz", "c.gz", "d.gz"}


def test_cd_and_stat_distinguish_files_and_directories(run_sftp: Callable[..., Any]) -> None:
    # WHEN the user stats a file, a directory reached via a relative path, and a missing name
    async def action(sftp: asyncssh.SFTPClient) -> tuple[Any, Any, bool, str]:
        await sftp.chdir(REQUEST_ID)
        file_attrs = await sftp.stat(BIG_NAME)
        dir_attrs = await sftp.stat("../req-0002/nested")
        missing = await sftp.exists("nope.gz")
        return file_attrs, dir_attrs, missing, await sftp.realpath("../req-0002/nested/..")

    file_attrs, dir_attrs, missing, resolved = run_sftp(action)
    # THEN sizes and types are right and a missing name does not exist
    assert stat.S_ISREG(file_attrs.permissions)
    assert file_attrs.size == BIG_SIZE
    assert file_attrs.mtime is not None
    assert stat.S_ISDIR(dir_attrs.permissions)
    assert missing is False
    assert resolved == "/req-0002"


def test_listing_a_missing_directory_fails(run_sftp: Callable[..., Any]) -> None:
    # WHEN the user lists a directory that no key implies THEN it does not exist
    with pytest.raises(asyncssh.SFTPNoSuchFile):
        run_sftp(lambda sftp: sftp.readdir("/req-9999"))


# --- downloading ------------------------------------------------------------------------------


def test_get_downloads_large_file_with_few_ranged_gets(
    run_sftp: Callable[..., Any],
    observed_s3: ObservedS3Client,
    big_body: bytes,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # GIVEN a 20 MB export and a log that records the session
    caplog.set_level(logging.INFO, logger="meterflow.sftp")
    local = tmp_path / BIG_NAME
    observed_s3.get_ranges.clear()
    # WHEN the user downloads it
    run_sftp(lambda sftp: sftp.get(f"/{BIG_PATH}", str(local)))
    # THEN the bytes are identical
    assert local.read_bytes() == big_body
    # AND S3 was read in 8 MiB ranges, not once per 16-32 KiB SFTP read
    assert observed_s3.get_ranges == [
        "bytes=0-8388607",
        "bytes=8388608-16777215",
        f"bytes=16777216-{BIG_SIZE - 1}",
    ]
    # AND the login and the open were each logged once
    messages = [record.getMessage() for record in caplog.records if record.name == "meterflow.sftp"]
    assert sum("sftp login user=sftp-user" in message for message in messages) == 1
    assert sum("sftp open user=sftp-user" in message and BIG_NAME in message for message in messages) == 1


def test_random_access_reads_cross_block_boundaries(run_sftp: Callable[..., Any], big_body: bytes) -> None:
    # WHEN the user reads slices that straddle read-ahead blocks, out of order and past the end
    boundary = 8 * 1024 * 1024
    slices = [
        (boundary - 10, 20),
        (5, 100),
        (2 * boundary - 1, 70_000),
        (BIG_SIZE - 5, 100),
        (BIG_SIZE + 1, 10),
    ]

    async def action(sftp: asyncssh.SFTPClient) -> list[bytes]:
        async with sftp.open(f"/{BIG_PATH}", "rb") as remote:
            results = []
            for offset, size in slices:
                await remote.seek(offset)
                results.append(await remote.read(size))
            return results

    # THEN each slice matches the object's bytes
    assert run_sftp(action) == [big_body[offset : offset + size] for offset, size in slices]


def test_small_file_round_trips(run_sftp: Callable[..., Any]) -> None:
    # WHEN the user reads a small export whole THEN it is the stored body
    async def action(sftp: asyncssh.SFTPClient) -> bytes:
        async with sftp.open(SMALL_PATH, "rb") as remote:
            data: bytes = await remote.read()
            return data

    assert run_sftp(action) == SMALL_BODY


def test_a_failed_s3_read_is_reported_then_retried(
    run_sftp: Callable[..., Any], observed_s3: ObservedS3Client, big_body: bytes
) -> None:
    # GIVEN S3 fails the next GetObject
    observed_s3.failing_gets = 1

    async def action(sftp: asyncssh.SFTPClient) -> tuple[str, bytes]:
        async with sftp.open(f"/{BIG_PATH}", "rb") as remote:
            # WHEN the user reads
            with pytest.raises(asyncssh.SFTPFailure) as failure:
                await remote.read(1000, 0)
            # AND reads again
            return str(failure.value.reason), await remote.read(1000, 0)

    reason, retried = run_sftp(action)
    # THEN the first read failed without leaking S3 details and the retry fetched the block afresh
    assert reason == "storage backend error"
    assert retried == big_body[:1000]


# --- confinement and authentication -----------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "../exports-private/secret.gz",
        "/../../exports-private/secret.gz",
        "/../../../../exports-private/secret.gz",
        f"/{REQUEST_ID}/../../exports-private/secret.gz",
        "../../" + SECRET_KEY,
    ],
)
def test_traversal_cannot_reach_another_prefix(
    run_sftp: Callable[..., Any], path: str, tmp_path: Path
) -> None:
    # WHEN the user tries to climb out of the root to the sibling prefix
    # THEN the file does not exist, neither to stat nor to get
    with pytest.raises(asyncssh.SFTPNoSuchFile):
        run_sftp(lambda sftp: sftp.stat(path))
    with pytest.raises(asyncssh.SFTPNoSuchFile):
        run_sftp(lambda sftp: sftp.get(path, str(tmp_path / "leak")))
    assert not (tmp_path / "leak").exists()


def test_listing_above_the_root_shows_the_root(run_sftp: Callable[..., Any]) -> None:
    # WHEN the user lists "/../.." THEN they see the root's own entries, not the bucket's
    assert set(_names(run_sftp(lambda sftp: sftp.readdir("/../..")))) == {"req-0001", "req-0002", "req-0003"}


@pytest.mark.parametrize(
    ("key_name", "username"),
    [("stranger", USERNAME), ("user", "someone-else")],
    ids=["unknown-key", "unknown-user"],
)
def test_login_requires_the_authorized_key_of_the_user(
    run_sftp: Callable[..., Any], user_key: SshKeyPair, stranger_key: SshKeyPair, key_name: str, username: str
) -> None:
    # GIVEN a key the server does not know, or the right key for another user name
    key = stranger_key if key_name == "stranger" else user_key
    # WHEN they log in THEN the server refuses
    with pytest.raises(asyncssh.PermissionDenied):
        run_sftp(lambda sftp: sftp.listdir("/"), key_pem=key.private_pem, username=username)


def test_client_refuses_a_server_with_another_host_key(
    server: S3SftpServer, user_key: SshKeyPair, tmp_path: Path
) -> None:
    # GIVEN a known_hosts file that pins a different host key for the server's address
    impostor = load_or_create_host_key(tmp_path / "other_host_key")
    pinned = tmp_path / "known_hosts"
    write_known_hosts(pinned, impostor, port=server.port)
    # WHEN a verifying client connects THEN it rejects the server
    with pytest.raises(asyncssh.HostKeyNotVerifiable):
        asyncio.run(
            _connect_and_run(server.port, pinned, user_key.private_pem, USERNAME, lambda sftp: sftp.listdir())
        )


# --- read-only --------------------------------------------------------------------------------


WRITE_ATTEMPTS: dict[str, Callable[[asyncssh.SFTPClient], Awaitable[Any]]] = {
    "open-for-write": lambda sftp: sftp.open(f"/{REQUEST_ID}/new.gz", "wb"),
    "overwrite": lambda sftp: sftp.open(f"/{SMALL_PATH}", "r+b"),
    "append": lambda sftp: sftp.open(f"/{SMALL_PATH}", "ab"),
    "remove": lambda sftp: sftp.remove(f"/{SMALL_PATH}"),
    "mkdir": lambda sftp: sftp.mkdir("/req-new"),
    "rmdir": lambda sftp: sftp.rmdir("/req-0002/nested"),
    "rename": lambda sftp: sftp.rename(f"/{SMALL_PATH}", "/moved.gz"),
    "posix-rename": lambda sftp: sftp.posix_rename(f"/{SMALL_PATH}", "/moved.gz"),
    "chmod": lambda sftp: sftp.chmod(f"/{SMALL_PATH}", 0o777),
    "symlink": lambda sftp: sftp.symlink("/../exports-private/secret.gz", "/link.gz"),
    "hardlink": lambda sftp: sftp.link(f"/{SMALL_PATH}", "/link.gz"),
}


@pytest.mark.parametrize("attempt", WRITE_ATTEMPTS.values(), ids=WRITE_ATTEMPTS.keys())
def test_every_write_is_permission_denied(
    run_sftp: Callable[..., Any], s3: Any, attempt: Callable[[asyncssh.SFTPClient], Awaitable[Any]]
) -> None:
    # GIVEN the bucket's current keys
    before = sorted(obj["Key"] for obj in s3.list_objects_v2(Bucket=BUCKET)["Contents"])
    # WHEN the user tries to change anything THEN the server answers "permission denied"
    with pytest.raises(asyncssh.SFTPPermissionDenied):
        run_sftp(attempt)
    # AND the bucket is unchanged
    assert sorted(obj["Key"] for obj in s3.list_objects_v2(Bucket=BUCKET)["Contents"]) == before


def test_put_is_permission_denied(run_sftp: Callable[..., Any], tmp_path: Path) -> None:
    # GIVEN a local file WHEN the user uploads it THEN the server refuses
    upload = tmp_path / "upload.gz"
    upload.write_bytes(b"payload")
    with pytest.raises(asyncssh.SFTPPermissionDenied):
        run_sftp(lambda sftp: sftp.put(str(upload), f"/{REQUEST_ID}/upload.gz"))


# --- OpenSSH ----------------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("sftp") is None, reason="OpenSSH sftp client not installed")
def test_openssh_sftp_gets_a_file_with_verified_host_key(
    server: S3SftpServer, known_hosts: Path, user_key: SshKeyPair, big_body: bytes, tmp_path: Path
) -> None:
    # GIVEN the user's private key saved as the seed says (chmod 400) and a batch of sftp commands
    key_file = tmp_path / "private.pem"
    key_file.write_text(user_key.private_pem)
    key_file.chmod(0o400)
    local = tmp_path / BIG_NAME
    batch = tmp_path / "batch"
    batch.write_text(f"cd {REQUEST_ID}\nls -l\nget {BIG_NAME} {local}\n-put {key_file} stolen.pem\n")
    # WHEN OpenSSH's sftp runs it with strict host key checking against the written known_hosts
    completed = subprocess.run(
        [
            "sftp",
            "-b",
            str(batch),
            "-i",
            str(key_file),
            "-P",
            str(server.port),
            "-F",
            "/dev/null",
            "-o",
            f"UserKnownHostsFile={known_hosts}",
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
            f"{USERNAME}@127.0.0.1",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # THEN the download succeeded byte for byte, the listing showed the file and the upload was refused
    assert completed.returncode == 0, completed.stderr
    assert local.read_bytes() == big_body
    assert BIG_NAME in completed.stdout
    assert "Permission denied" in completed.stderr


# --- lifecycle --------------------------------------------------------------------------------


@pytest.fixture
def make_server(s3: Any, user_key: SshKeyPair, tmp_path: Path) -> Iterator[Callable[[int], S3SftpServer]]:
    """Builds extra servers for lifecycle tests, and stops whatever a test left running."""
    made: list[S3SftpServer] = []

    def make(port: int) -> S3SftpServer:
        sftp_server = S3SftpServer(
            s3,
            bucket=BUCKET,
            root_prefix=ROOT_PREFIX,
            username=USERNAME,
            authorized_public_keys=[user_key.public_openssh],
            host_key_path=tmp_path / "ssh_host_key",
            port=port,
        )
        made.append(sftp_server)
        return sftp_server

    yield make
    for sftp_server in made:
        sftp_server.stop()


def test_stop_closes_the_port_and_joins_the_thread(make_server: Callable[[int], S3SftpServer]) -> None:
    # GIVEN a second server started on port 0
    threads_before = {thread.name for thread in threading.enumerate()}
    sftp_server = make_server(0)
    sftp_server.start()
    port = sftp_server.port
    assert port != 0
    socket.create_connection(("127.0.0.1", port), timeout=5).close()
    # WHEN it is stopped (twice, which must be harmless)
    sftp_server.stop()
    sftp_server.stop()
    # THEN nothing listens on its port any more and its threads are gone
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5)
    assert not sftp_server.running
    leftover = {thread.name for thread in threading.enumerate()} - threads_before
    assert not {name for name in leftover if name.startswith("meterflow-sftp")}


def test_stop_ends_sessions_in_progress(
    make_server: Callable[[int], S3SftpServer], user_key: SshKeyPair, tmp_path: Path
) -> None:
    # GIVEN a client in the middle of reading a file
    sftp_server = make_server(0)
    sftp_server.start()
    known = tmp_path / "known_hosts"
    sftp_server.write_known_hosts(known)
    outcome: dict[str, Any] = {}

    async def action(sftp: asyncssh.SFTPClient) -> None:
        remote = await sftp.open(f"/{BIG_PATH}", "rb")
        await remote.read(1024, 0)
        # WHEN the server is stopped under it
        started = time.monotonic()
        await asyncio.to_thread(sftp_server.stop)
        outcome["stop_seconds"] = time.monotonic() - started
        try:
            await remote.read(1024, 1024)
        except (asyncssh.Error, OSError) as exc:
            outcome["read_error"] = exc

    with contextlib.suppress(asyncssh.Error, OSError):
        # Leaving the session fails as well once the server has gone; only the outcome matters here.
        asyncio.run(_connect_and_run(sftp_server.port, known, user_key.private_pem, USERNAME, action))
    # THEN stopping did not wait for the client to leave, and the session is over
    assert outcome["stop_seconds"] < 5
    assert isinstance(outcome.get("read_error"), asyncssh.Error | OSError)


def test_start_fails_loudly_when_the_port_is_taken(make_server: Callable[[int], S3SftpServer]) -> None:
    # GIVEN a port someone else listens on
    with socket.socket() as occupant:
        occupant.bind(("127.0.0.1", 0))
        occupant.listen()
        sftp_server = make_server(occupant.getsockname()[1])
        # WHEN the server starts there THEN start() raises instead of returning a dead server
        with pytest.raises(OSError, match=r"(?i)address already in use"):
            sftp_server.start()
    assert not sftp_server.running
