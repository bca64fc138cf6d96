"""A read-only SFTP server over one S3 prefix: the local runtime's stand-in for AWS Transfer Family.

One user logs in with a public key and sees ``s3://<bucket>/<root_prefix>/`` as "/". Directories are
inferred from key prefixes, as the S3 console and Transfer Family do, and nothing can be written.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import errno
import functools
import logging
import os
import stat
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, TypeVar

import asyncssh
from asyncssh.constants import (
    ACE4_APPEND_DATA,
    ACE4_WRITE_ATTRIBUTES,
    ACE4_WRITE_DATA,
    FILEXFER_TYPE_DIRECTORY,
    FILEXFER_TYPE_REGULAR,
    FXF_ACCESS_DISPOSITION,
    FXF_APPEND,
    FXF_CREAT,
    FXF_EXCL,
    FXF_OPEN_EXISTING,
    FXF_TRUNC,
    FXF_WRITE,
)

from meterflow.localcloud.background_loop import BackgroundLoop
from meterflow.localcloud.ssh_keys import (
    host_key_fingerprint,
    known_hosts_line,
    load_or_create_host_key,
    write_known_hosts,
)

logger = logging.getLogger("meterflow.sftp")

_T = TypeVar("_T")

DEFAULT_READ_AHEAD_BYTES = 8 * 1024 * 1024
_S3_WORKER_THREADS = 8
_START_TIMEOUT_SECONDS = 30.0
_STOP_TIMEOUT_SECONDS = 10.0
_ACCEPT_SETTLE_ITERATIONS = 3
_FILE_MODE = stat.S_IFREG | 0o444
_DIR_MODE = stat.S_IFDIR | 0o555
_WRITE_PFLAGS = FXF_WRITE | FXF_APPEND | FXF_CREAT | FXF_TRUNC | FXF_EXCL
_WRITE_ACCESS = ACE4_WRITE_DATA | ACE4_APPEND_DATA | ACE4_WRITE_ATTRIBUTES
_READ_ONLY = "read-only: this SFTP endpoint only serves downloads"


class S3ReadClient(Protocol):
    """The two S3 operations the server calls; a ``boto3.client("s3")`` satisfies it."""

    def list_objects_v2(self, *args: Any, **kwargs: Any) -> Mapping[str, Any]: ...

    def get_object(self, *args: Any, **kwargs: Any) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class _S3Object:
    key: str
    size: int
    etag: str
    last_modified: datetime | None


def normalize_virtual_path(path: bytes) -> str | None:
    """The absolute, ``..``-free form of a client path, or None for a path no S3 key could match.

    ``..`` at "/" stays at "/", as under chroot(2): whatever the client sends, the result names
    something under the root prefix, which is what keeps other prefixes of the bucket out of reach.
    """
    try:
        text = path.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if "\x00" in text:
        return None
    parts: list[str] = []
    # Segment by segment rather than posixpath.normpath, which keeps a leading "//" as is.
    for segment in text.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if parts:
                parts.pop()
            continue
        parts.append(segment)
    return "/" + "/".join(parts)


def _normalize_root_prefix(root_prefix: str) -> str:
    segments = [segment for segment in root_prefix.split("/") if segment]
    if any(segment in (".", "..") for segment in segments):
        raise ValueError(f"root_prefix must not contain '.' or '..' segments: {root_prefix!r}")
    return "".join(f"{segment}/" for segment in segments)


def _client_error_code(exc: BaseException) -> str | None:
    # Duck-typed so that this module needs no botocore import (and no botocore stubs for mypy).
    response = getattr(exc, "response", None)
    if isinstance(response, Mapping):
        error = response.get("Error")
        if isinstance(error, Mapping):
            code = error.get("Code")
            return str(code) if code is not None else None
    return None


class _S3Namespace:
    """The blocking S3 side: maps virtual paths to keys under the root prefix and reads them."""

    def __init__(self, s3_client: S3ReadClient, bucket: str, root_prefix: str) -> None:
        self._s3 = s3_client
        self._bucket = bucket
        self._root = _normalize_root_prefix(root_prefix)

    @property
    def location(self) -> str:
        return self.uri(self._root)

    def uri(self, key: str) -> str:
        return f"s3://{self._bucket}/{key}"

    def object_key(self, vpath: str) -> str:
        return self._root + vpath.lstrip("/")

    def directory_prefix(self, vpath: str) -> str:
        relative = vpath.strip("/")
        return f"{self._root}{relative}/" if relative else self._root

    def find_object(self, key: str) -> _S3Object | None:
        # A key sorts before every longer key it prefixes, so one listed key answers "does it exist"
        # without HeadObject, whose 404 arrives as an exception that only botocore can classify.
        page = self._s3.list_objects_v2(Bucket=self._bucket, Prefix=key, MaxKeys=1)
        for entry in page.get("Contents", []):
            if entry["Key"] == key:
                return _object_from_listing(entry)
        return None

    def directory_exists(self, prefix: str) -> bool:
        if prefix == self._root:
            return True
        page = self._s3.list_objects_v2(Bucket=self._bucket, Prefix=prefix, MaxKeys=1)
        return bool(page.get("Contents")) or bool(page.get("CommonPrefixes"))

    def list_directory_page(
        self, prefix: str, continuation_token: str | None
    ) -> tuple[list[tuple[str, _S3Object]], list[str], str | None]:
        """One page of (file name, object) pairs and subdirectory names directly under ``prefix``."""
        request: dict[str, Any] = {"Bucket": self._bucket, "Prefix": prefix, "Delimiter": "/"}
        if continuation_token is not None:
            request["ContinuationToken"] = continuation_token
        page = self._s3.list_objects_v2(**request)
        files = [
            (str(entry["Key"])[len(prefix) :], _object_from_listing(entry))
            for entry in page.get("Contents", [])
        ]
        subdirs = [
            str(entry["Prefix"])[len(prefix) :].rstrip("/") for entry in page.get("CommonPrefixes", [])
        ]
        token = page.get("NextContinuationToken") if page.get("IsTruncated") else None
        return files, subdirs, token

    def read_range(self, obj: _S3Object, start: int, end: int) -> bytes:
        """Bytes ``[start, end)`` of the object as it was when the file was opened."""
        try:
            # If-Match pins every ranged GET to the version that was opened: a download that spans an
            # overwrite fails instead of silently splicing two versions of the file together.
            response = self._s3.get_object(
                Bucket=self._bucket, Key=obj.key, Range=f"bytes={start}-{end - 1}", IfMatch=obj.etag
            )
        except Exception as exc:
            code = _client_error_code(exc)
            if code in ("PreconditionFailed", "412"):
                raise asyncssh.SFTPFailure("file changed on the server during the download") from exc
            if code in ("NoSuchKey", "404", "NotFound"):
                raise asyncssh.SFTPNoSuchFile("file was removed during the download") from exc
            raise
        body = response["Body"]
        try:
            data = body.read()
        finally:
            body.close()
        if len(data) != end - start:
            raise asyncssh.SFTPFailure(f"short read from S3: wanted {end - start} bytes, got {len(data)}")
        return bytes(data)


def _object_from_listing(entry: Mapping[str, Any]) -> _S3Object:
    last_modified = entry.get("LastModified")
    return _S3Object(
        key=str(entry["Key"]),
        size=int(entry["Size"]),
        etag=str(entry["ETag"]),
        last_modified=last_modified if isinstance(last_modified, datetime) else None,
    )


def _file_attrs(obj: _S3Object) -> asyncssh.SFTPAttrs:
    mtime = int(obj.last_modified.timestamp()) if obj.last_modified is not None else None
    return asyncssh.SFTPAttrs(
        type=FILEXFER_TYPE_REGULAR, size=obj.size, permissions=_FILE_MODE, atime=mtime, mtime=mtime, nlink=1
    )


def _dir_attrs() -> asyncssh.SFTPAttrs:
    return asyncssh.SFTPAttrs(type=FILEXFER_TYPE_DIRECTORY, size=0, permissions=_DIR_MODE, nlink=1)


class _S3ReadHandle:
    """An open file: serves SFTP reads from large ranged GETs, fetching the next block ahead of the client.

    SFTP clients read in 32-256 KiB requests; forwarding each as its own GET would cost one S3 round
    trip per request. Blocks are fetched as tasks so that block n+1 downloads while block n is sent.
    """

    def __init__(
        self,
        obj: _S3Object,
        fetch: Callable[[_S3Object, int, int], Awaitable[bytes]],
        block_size: int,
    ) -> None:
        self.obj = obj
        self.attrs = _file_attrs(obj)
        self.bytes_served = 0
        self._fetch = fetch
        self._block_size = block_size
        self._blocks: dict[int, asyncio.Task[bytes]] = {}

    async def read(self, offset: int, size: int) -> bytes:
        total = self.obj.size
        if size <= 0 or offset >= total:
            return b""
        end = min(offset + size, total)
        first, last = offset // self._block_size, (end - 1) // self._block_size
        # One block of slack behind keeps slightly out-of-order requests from re-fetching a block.
        self._keep_only(first - 1, last + 1)
        chunks: list[bytes] = []
        for index in range(first, last + 1):
            block = await self._block(index)
            base = index * self._block_size
            chunks.append(block[max(offset, base) - base : end - base])
        if (last + 1) * self._block_size < total:
            self._block_task(last + 1)
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        self.bytes_served += len(data)
        return data

    async def _block(self, index: int) -> bytes:
        task = self._block_task(index)
        try:
            return await task
        except Exception:
            # Forget the failed block so that a client retry fetches it again.
            if self._blocks.get(index) is task:
                del self._blocks[index]
            raise

    def _block_task(self, index: int) -> asyncio.Task[bytes]:
        task = self._blocks.get(index)
        if task is None:
            start = index * self._block_size
            end = min(start + self._block_size, self.obj.size)
            task = asyncio.ensure_future(self._fetch(self.obj, start, end))
            # A read-ahead block may fail and be dropped before anyone awaits it; retrieving the
            # exception here keeps asyncio from logging "exception was never retrieved".
            task.add_done_callback(_swallow_task_exception)
            self._blocks[index] = task
        return task

    def _keep_only(self, low: int, high: int) -> None:
        for index in [index for index in self._blocks if not low <= index <= high]:
            self._blocks.pop(index).cancel()

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        """Sparse-file probing (the ranges@asyncssh.com extension): an S3 object is one data range."""
        if whence in (os.SEEK_DATA, os.SEEK_HOLE):
            if offset >= self.obj.size:
                raise OSError(errno.ENXIO, "offset beyond end of file")
            return offset if whence == os.SEEK_DATA else self.obj.size
        raise OSError(errno.EINVAL, "only SEEK_DATA and SEEK_HOLE are supported")

    def close(self) -> None:
        self._keep_only(0, -1)


def _swallow_task_exception(task: asyncio.Task[bytes]) -> None:
    if not task.cancelled():
        task.exception()


class _Backend:
    """What every session shares: the namespace and the worker threads that run blocking boto3 calls."""

    def __init__(
        self, namespace: _S3Namespace, executor: concurrent.futures.Executor, block_size: int
    ) -> None:
        self.namespace = namespace
        self.block_size = block_size
        self._executor = executor

    async def call(self, func: Callable[..., _T], *args: Any) -> _T:
        # boto3 blocks; running it on the event loop would stall every other session meanwhile.
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, functools.partial(func, *args))
        except asyncssh.SFTPError:
            raise
        except Exception as exc:
            # asyncssh would send the raw exception text (bucket, key, endpoint) to the client;
            # the details belong in the server log, the client only needs to know it failed.
            logger.warning("sftp S3 call %s failed: %r", getattr(func, "__name__", func), exc)
            raise asyncssh.SFTPFailure("storage backend error") from exc

    async def fetch_range(self, obj: _S3Object, start: int, end: int) -> bytes:
        return await self.call(self.namespace.read_range, obj, start, end)


class _ReadOnlyS3Sftp(asyncssh.SFTPServer):
    """One SFTP session. Every method that would change anything answers "permission denied"."""

    def __init__(self, chan: asyncssh.SSHServerChannel[bytes], backend: _Backend) -> None:
        super().__init__(chan)
        self._backend = backend
        self._ns = backend.namespace
        self._who = f"user={chan.get_extra_info('username')} peer={_peer(chan.get_extra_info('peername'))}"

    # -- path resolution -------------------------------------------------------------------------

    def map_path(self, path: bytes) -> bytes:
        # Every inherited method that would touch the local filesystem goes through map_path; refusing
        # here keeps any of them, including ones a future asyncssh adds, from reaching the disk.
        raise asyncssh.SFTPPermissionDenied(_READ_ONLY)

    def _vpath(self, path: bytes) -> str:
        vpath = normalize_virtual_path(path)
        if vpath is None:
            raise asyncssh.SFTPNoSuchFile("No such file")
        return vpath

    async def _lookup(self, vpath: str) -> _S3Object | None:
        """The object at ``vpath``, None for a directory; raises SFTPNoSuchFile if it is neither."""
        if vpath == "/":
            return None
        obj = await self._backend.call(self._ns.find_object, self._ns.object_key(vpath))
        if obj is not None:
            return obj
        if await self._backend.call(self._ns.directory_exists, self._ns.directory_prefix(vpath)):
            return None
        raise asyncssh.SFTPNoSuchFile("No such file")

    def realpath(self, path: bytes) -> bytes:
        return self._vpath(path).encode("utf-8")

    async def stat(self, path: bytes) -> asyncssh.SFTPAttrs:
        obj = await self._lookup(self._vpath(path))
        return _dir_attrs() if obj is None else _file_attrs(obj)

    async def lstat(self, path: bytes) -> asyncssh.SFTPAttrs:
        return await self.stat(path)

    def readlink(self, path: bytes) -> bytes:
        raise asyncssh.SFTPNoSuchFile("No symbolic links here")

    # -- directories -----------------------------------------------------------------------------

    async def scandir(self, path: bytes) -> AsyncIterator[asyncssh.SFTPName]:
        vpath = self._vpath(path)
        prefix = self._ns.directory_prefix(vpath)
        for dot in (b".", b".."):
            yield asyncssh.SFTPName(dot, attrs=_dir_attrs())
        seen: set[str] = set()
        token: str | None = None
        first_page = True
        while True:
            files, subdirs, token = await self._backend.call(self._ns.list_directory_page, prefix, token)
            if first_page and not files and not subdirs and vpath != "/":
                # An empty listing is all S3 says for a file or a missing path; tell them apart.
                obj = await self._lookup(vpath)
                if obj is not None:
                    raise asyncssh.SFTPNotADirectory("Not a directory")
            first_page = False
            # Files first: a key "a" sorts before the prefix "a/", so if both exist the file wins,
            # as it does in stat(); names S3 allows but paths cannot address ("", ".", "..") are hidden.
            for name, obj in files:
                if _addressable(name) and name not in seen:
                    seen.add(name)
                    yield asyncssh.SFTPName(name.encode("utf-8"), attrs=_file_attrs(obj))
            for name in subdirs:
                if _addressable(name) and name not in seen:
                    seen.add(name)
                    yield asyncssh.SFTPName(name.encode("utf-8"), attrs=_dir_attrs())
            if token is None:
                return

    # -- files -----------------------------------------------------------------------------------

    async def open(self, path: bytes, pflags: int, attrs: asyncssh.SFTPAttrs) -> _S3ReadHandle:
        if pflags & _WRITE_PFLAGS:
            raise asyncssh.SFTPPermissionDenied(_READ_ONLY)
        return await self._open_for_read(path)

    async def open56(
        self, path: bytes, desired_access: int, flags: int, attrs: asyncssh.SFTPAttrs
    ) -> _S3ReadHandle:
        if desired_access & _WRITE_ACCESS or (flags & FXF_ACCESS_DISPOSITION) != FXF_OPEN_EXISTING:
            raise asyncssh.SFTPPermissionDenied(_READ_ONLY)
        return await self._open_for_read(path)

    async def _open_for_read(self, path: bytes) -> _S3ReadHandle:
        vpath = self._vpath(path)
        obj = await self._lookup(vpath)
        if obj is None:
            raise asyncssh.SFTPFileIsADirectory("Is a directory")
        logger.info(
            "sftp open %s path=%s size=%d source=%s", self._who, vpath, obj.size, self._ns.uri(obj.key)
        )
        return _S3ReadHandle(obj, self._backend.fetch_range, self._backend.block_size)

    async def read(self, file_obj: object, offset: int, size: int) -> bytes:
        return await _handle(file_obj).read(offset, size)

    def fstat(self, file_obj: object) -> asyncssh.SFTPAttrs:
        return _handle(file_obj).attrs

    def close(self, file_obj: object) -> None:
        handle = _handle(file_obj)
        handle.close()
        logger.debug("sftp close %s key=%s bytes_served=%d", self._who, handle.obj.key, handle.bytes_served)

    def fsync(self, file_obj: object) -> None:
        return None

    # -- everything that writes ------------------------------------------------------------------

    def write(self, file_obj: object, offset: int, data: bytes) -> int:
        raise asyncssh.SFTPPermissionDenied(_READ_ONLY)

    def setstat(self, path: bytes, attrs: asyncssh.SFTPAttrs) -> None:
        raise asyncssh.SFTPPermissionDenied(_READ_ONLY)

    def lsetstat(self, path: bytes, attrs: asyncssh.SFTPAttrs) -> None:
        raise asyncssh.SFTPPermissionDenied(_READ_ONLY)

    def fsetstat(self, file_obj: object, attrs: asyncssh.SFTPAttrs) -> None:
        raise asyncssh.SFTPPermissionDenied(_READ_ONLY)

    def remove(self, path: bytes) -> None:
        raise asyncssh.SFTPPermissionDenied(_READ_ONLY)

    def mkdir(self, path: bytes, attrs: asyncssh.SFTPAttrs) -> None:
        raise asyncssh.SFTPPermissionDenied(_READ_ONLY)

    def rmdir(self, path: bytes) -> None:
        raise asyncssh.SFTPPermissionDenied(_READ_ONLY)

    def rename(self, oldpath: bytes, newpath: bytes) -> None:
        raise asyncssh.SFTPPermissionDenied(_READ_ONLY)

    def posix_rename(self, oldpath: bytes, newpath: bytes) -> None:
        raise asyncssh.SFTPPermissionDenied(_READ_ONLY)

    def symlink(self, oldpath: bytes, newpath: bytes) -> None:
        raise asyncssh.SFTPPermissionDenied(_READ_ONLY)

    def link(self, oldpath: bytes, newpath: bytes) -> None:
        raise asyncssh.SFTPPermissionDenied(_READ_ONLY)

    def statvfs(self, path: bytes) -> asyncssh.SFTPVFSAttrs:
        raise asyncssh.SFTPOpUnsupported("statvfs not supported")

    def fstatvfs(self, file_obj: object) -> asyncssh.SFTPVFSAttrs:
        raise asyncssh.SFTPOpUnsupported("fstatvfs not supported")


def _addressable(name: str) -> bool:
    return name not in ("", ".", "..")


def _handle(file_obj: object) -> _S3ReadHandle:
    if not isinstance(file_obj, _S3ReadHandle):
        raise asyncssh.SFTPFailure("Invalid file handle")
    return file_obj


def _peer(peername: object) -> str:
    if isinstance(peername, tuple) and len(peername) >= 2:
        return f"{peername[0]}:{peername[1]}"
    return str(peername)


class _LoginPolicy(asyncssh.SSHServer):
    """Per-connection authentication: public keys of the one configured user, nothing else."""

    def __init__(self, server: S3SftpServer) -> None:
        self._server = server
        self._conn: asyncssh.SSHServerConnection | None = None
        self._peer = "?"
        self._attempted_user: str | None = None
        self._allowed: frozenset[bytes] = frozenset()
        self._accepted_key: asyncssh.SSHKey | None = None
        self._authenticated = False

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        self._peer = _peer(conn.get_extra_info("peername"))
        self._server._connections.add(conn)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._conn is not None:
            self._server._connections.discard(self._conn)
        if not self._authenticated and self._attempted_user is not None:
            logger.warning("sftp login refused user=%s peer=%s", self._attempted_user, self._peer)

    async def begin_auth(self, username: str) -> bool:
        self._attempted_user = username
        # Unknown users still go through (failing) key auth, so the answer does not reveal who exists.
        self._allowed = (
            await self._server._authorized_key_blobs() if username == self._server.username else frozenset()
        )
        return True

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        if username == self._server.username and key.public_data in self._allowed:
            self._accepted_key = key
            return True
        return False

    def password_auth_supported(self) -> bool:
        return False

    def kbdint_auth_supported(self) -> bool:
        return False

    def host_based_auth_supported(self) -> bool:
        return False

    def auth_completed(self) -> None:
        self._authenticated = True
        fingerprint = self._accepted_key.get_fingerprint("sha256") if self._accepted_key else "?"
        logger.info("sftp login user=%s peer=%s key=%s", self._attempted_user, self._peer, fingerprint)


class S3SftpServer:
    """Serves ``s3://bucket/root_prefix/`` read-only over SFTP from a background thread.

    ``start()`` returns once the port listens (``port`` then holds the bound port, useful with 0);
    ``stop()`` closes the listener and every session and joins the thread.
    """

    def __init__(
        self,
        s3_client: S3ReadClient,
        bucket: str,
        root_prefix: str,
        username: str,
        authorized_public_keys: Callable[[], Sequence[str]] | Sequence[str],
        host_key_path: Path,
        host: str = "127.0.0.1",
        port: int = 2222,
        *,
        read_ahead_bytes: int = DEFAULT_READ_AHEAD_BYTES,
    ) -> None:
        if isinstance(authorized_public_keys, str):
            raise TypeError(
                "authorized_public_keys must be a list of key lines (or a callable returning one)"
            )
        if read_ahead_bytes <= 0:
            raise ValueError("read_ahead_bytes must be positive")
        self.username = username
        self.host = host
        self._port = port
        self._namespace = _S3Namespace(s3_client, bucket, root_prefix)
        self._authorized_public_keys = authorized_public_keys
        self._host_key_path = host_key_path
        self._read_ahead_bytes = read_ahead_bytes
        self._host_key: asyncssh.SSHKey | None = None
        self._lifecycle = threading.Lock()
        self._background: BackgroundLoop[int] = BackgroundLoop(
            "meterflow-sftp", "sftp server", logger, _STOP_TIMEOUT_SECONDS
        )
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._connections: set[asyncssh.SSHServerConnection] = set()

    # -- public surface --------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The listening port: the bound one once started, so ``port=0`` callers learn which it is."""
        return self._port

    @property
    def host_key(self) -> asyncssh.SSHKey:
        if self._host_key is None:
            self._host_key = load_or_create_host_key(self._host_key_path)
        return self._host_key

    @property
    def host_key_fingerprint(self) -> str:
        return host_key_fingerprint(self.host_key)

    def known_hosts_line(self) -> str:
        return known_hosts_line(self.host_key, port=self.port, host=self.host)

    def write_known_hosts(self, path: Path) -> str:
        """Write a known_hosts file for this server (call after ``start()`` when the port was 0)."""
        return write_known_hosts(path, self.host_key, port=self.port, host=self.host)

    @property
    def running(self) -> bool:
        return self._background.running

    def start(self) -> None:
        with self._lifecycle:
            if self._background.started:
                raise RuntimeError("S3SftpServer is already started")
            host_key = self.host_key
            executor = concurrent.futures.ThreadPoolExecutor(
                max_workers=_S3_WORKER_THREADS, thread_name_prefix="meterflow-sftp-s3"
            )
            backend = _Backend(self._namespace, executor, self._read_ahead_bytes)
            self._executor = executor
            try:
                self._port = self._background.start(
                    lambda ready, stop_requested: self._serve(host_key, backend, ready, stop_requested),
                    _START_TIMEOUT_SECONDS,
                )
            except BaseException:
                self._shutdown()
                raise
            logger.info(
                "sftp listening on %s:%d user=%s root=%s host_key=%s",
                self.host,
                self._port,
                self.username,
                self._namespace.location,
                host_key_fingerprint(host_key),
            )

    def stop(self) -> None:
        with self._lifecycle:
            if self._background.started:
                self._shutdown()
                logger.info("sftp stopped on %s:%d", self.host, self._port)

    def __enter__(self) -> S3SftpServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- internals -------------------------------------------------------------------------------

    def _shutdown(self) -> None:
        # The loop's leftover tasks (read-ahead of sessions torn down) are finished by BackgroundLoop.
        self._background.stop()
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
        self._executor = None

    async def _serve(
        self,
        host_key: asyncssh.SSHKey,
        backend: _Backend,
        ready: concurrent.futures.Future[int],
        stop_requested: asyncio.Event,
    ) -> None:
        def sftp_factory(chan: asyncssh.SSHServerChannel[bytes]) -> asyncssh.SFTPServer:
            return _ReadOnlyS3Sftp(chan, backend)

        acceptor = await asyncssh.create_server(
            lambda: _LoginPolicy(self),
            self.host,
            self._port,
            server_host_keys=[host_key],
            sftp_factory=sftp_factory,
            # SFTP only: no shell, exec, scp, port, agent or X11 forwarding, and only key-based logins.
            allow_scp=False,
            allow_pty=False,
            agent_forwarding=False,
            x11_forwarding=False,
            password_auth=False,
            kbdint_auth=False,
            host_based_auth=False,
            gss_auth=False,
            gss_kex=False,
            rdns_lookup=False,
        )
        try:
            ready.set_result(acceptor.get_port())
            await stop_requested.wait()
        finally:
            # asyncio accepts a socket in one loop iteration and builds its transport in a later one;
            # a Server.close() in between makes that transport fail an assertion and leak the socket.
            # So stop accepting first, let accepted sockets become connections, then close everything.
            loop = asyncio.get_running_loop()
            for listening in acceptor.sockets:
                loop.remove_reader(listening.fileno())
            for _ in range(_ACCEPT_SETTLE_ITERATIONS):
                await asyncio.sleep(0)
            acceptor.close()
            await acceptor.wait_closed()
            await self._close_connections()

    async def _close_connections(self) -> None:
        connections = list(self._connections)
        for conn in connections:
            conn.close()
        if connections:
            await asyncio.wait(
                [asyncio.ensure_future(conn.wait_closed()) for conn in connections],
                timeout=_STOP_TIMEOUT_SECONDS,
            )

    async def _authorized_key_blobs(self) -> frozenset[bytes]:
        source = self._authorized_public_keys
        try:
            if callable(source):
                # The callable may read a file or a secret store; keep that off the event loop.
                loop = asyncio.get_running_loop()
                lines: Sequence[str] = await loop.run_in_executor(None, source)
            else:
                lines = source
        except Exception:
            logger.exception("could not load authorized keys for %s; refusing all keys", self.username)
            return frozenset()
        blobs: set[bytes] = set()
        for line in lines:
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            try:
                blobs.add(asyncssh.import_public_key(line.strip()).public_data)
            except (asyncssh.KeyImportError, ValueError):
                logger.warning("ignoring an authorized key for %s that does not parse", self.username)
        return frozenset(blobs)
