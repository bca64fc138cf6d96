"""SSH key material for the local SFTP endpoint: user key pairs, the server host key, known_hosts lines.

The user key pair is what AWS Transfer Family users bring themselves (an RSA key OpenSSH reads as-is);
the host key is the server's identity, created once and kept so clients can pin it in known_hosts.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

import asyncssh
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

logger = logging.getLogger("meterflow.sftp")

# 3072 bits is the size ssh-keygen picks by default and NIST's floor for use beyond 2030.
RSA_KEY_BITS = 3072
_RSA_PUBLIC_EXPONENT = 65537
HOST_KEY_ALGORITHM = "ssh-ed25519"
_PRIVATE_FILE_MODE = 0o600


@dataclass(frozen=True)
class SshKeyPair:
    """A user key pair: ``private_pem`` goes to ``sftp -i``, ``public_openssh`` to the authorized keys."""

    private_pem: str
    public_openssh: str


def generate_ssh_keypair(comment: str | None = None) -> SshKeyPair:
    """Create an RSA key pair whose private half is in traditional PEM ("BEGIN RSA PRIVATE KEY")."""
    key = rsa.generate_private_key(public_exponent=_RSA_PUBLIC_EXPONENT, key_size=RSA_KEY_BITS)
    # Traditional PEM rather than the newer OpenSSH container: it is the format the seed's
    # instructions and Transfer Family documentation hand out, and every OpenSSH release reads it.
    private_pem = key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.TraditionalOpenSSL,
        encryption_algorithm=serialization.NoEncryption(),
    ).decode("ascii")
    public_openssh = (
        key.public_key()
        .public_bytes(encoding=serialization.Encoding.OpenSSH, format=serialization.PublicFormat.OpenSSH)
        .decode("ascii")
    )
    if comment:
        public_openssh = f"{public_openssh} {comment}"
    return SshKeyPair(private_pem=private_pem, public_openssh=public_openssh)


def load_or_create_host_key(path: Path) -> asyncssh.SSHKey:
    """Return the server host key stored at ``path``, creating an ed25519 key there (mode 0600) if absent.

    The key is kept across restarts so that known_hosts entries written for earlier runs stay valid.
    """
    if not path.exists():
        _create_host_key_file(path)
    _restrict_permissions(path)
    return asyncssh.read_private_key(path)


def _create_host_key_file(path: Path) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = asyncssh.generate_private_key(HOST_KEY_ALGORITHM, comment="meterflow-sftp-host")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        # mkstemp already creates the file 0600, so the secret is never readable by others, not even briefly.
        with os.fdopen(fd, "wb") as handle:
            handle.write(key.export_private_key("openssh"))
            handle.flush()
            os.fsync(handle.fileno())
        try:
            # link() fails if the target exists, so two processes racing to create the key
            # both end up using whichever key landed first instead of overwriting each other.
            os.link(tmp, path)
        except FileExistsError:
            return
        logger.info("created SFTP host key %s (%s)", path, key.get_fingerprint("sha256"))
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _restrict_permissions(path: Path) -> None:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        # OpenSSH's own sshd refuses such a key; tightening it is safer than serving it as is.
        logger.warning("host key %s had mode %o, tightening to %o", path, mode, _PRIVATE_FILE_MODE)
        path.chmod(_PRIVATE_FILE_MODE)


def host_key_fingerprint(host_key: asyncssh.SSHKey) -> str:
    """The key's SHA256 fingerprint as OpenSSH prints it ("SHA256:..."), for users to check by eye."""
    return host_key.get_fingerprint("sha256")


def public_key_openssh(key: asyncssh.SSHKey) -> str:
    """The "<algorithm> <base64>" form of a key's public half, without a comment."""
    algorithm, blob = key.export_public_key("openssh").decode("ascii").split()[:2]
    return f"{algorithm} {blob}"


def known_hosts_line(host_key: asyncssh.SSHKey, port: int, host: str = "127.0.0.1") -> str:
    """A known_hosts line pinning ``host_key`` for ``host``:``port``."""
    # OpenSSH looks non-default ports up as "[host]:port" and port 22 as the bare host.
    pattern = host if port == 22 else f"[{host}]:{port}"
    return f"{pattern} {public_key_openssh(host_key)}"


def write_known_hosts(path: Path, host_key: asyncssh.SSHKey, port: int, host: str = "127.0.0.1") -> str:
    """Write a known_hosts file holding only the line for this server, and return that line.

    Pass the file to clients (``sftp -o UserKnownHostsFile=<path> -o StrictHostKeyChecking=yes``,
    ``asyncssh.connect(known_hosts=<path>)``) so that they verify the server instead of trusting it blindly.
    """
    line = known_hosts_line(host_key, port=port, host=host)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(line + "\n")
        tmp.chmod(0o644)
        # Replacing atomically means a client started concurrently never reads a half-written file.
        tmp.replace(path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    return line
