"""The SFTP user's key pair in a deployed stack, made outside Terraform (``meterflow sftp rotate-key``).

Terraform declares the secret ``<stack>/sftp/private_key`` and the Transfer Family user without a
key, so no private key is ever in the Terraform state. This makes a key pair, registers the
public key with the user, stores the private key as the secret's current version, and only then
removes the user's older keys: the HES consumer is never left without a working key, and the
secret always holds a key the server accepts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from meterflow.localcloud.ssh_keys import generate_ssh_keypair

SFTP_USER = "sftp-user"


@dataclass(frozen=True)
class SftpKeyRotation:
    server_id: str
    user_name: str
    ssh_public_key_id: str
    public_openssh: str
    private_pem: str
    removed_key_ids: tuple[str, ...]


class SftpServerNotFound(LookupError):
    pass


def stack_sftp_server(transfer: Any, stack_name: str) -> str:
    """The id of the stack's Transfer Family server (tagged ``Name = <stack>-sftp`` by Terraform)."""
    wanted = f"{stack_name}-sftp"
    for page in transfer.get_paginator("list_servers").paginate():
        for server in page["Servers"]:
            described = transfer.describe_server(ServerId=server["ServerId"])["Server"]
            tags = {tag["Key"]: tag["Value"] for tag in described.get("Tags", [])}
            if tags.get("Name") == wanted:
                return str(server["ServerId"])
    raise SftpServerNotFound(f"no Transfer Family server tagged Name={wanted}")


def rotate_sftp_key(
    secretsmanager: Any,
    transfer: Any,
    stack_name: str,
    server_id: str | None = None,
    user_name: str = SFTP_USER,
) -> SftpKeyRotation:
    server_id = server_id or stack_sftp_server(transfer, stack_name)
    key_pair = generate_ssh_keypair(comment=f"{stack_name}-{user_name}")
    earlier = transfer.describe_user(ServerId=server_id, UserName=user_name)["User"].get("SshPublicKeys", [])
    imported = transfer.import_ssh_public_key(
        ServerId=server_id, UserName=user_name, SshPublicKeyBody=key_pair.public_openssh
    )["SshPublicKeyId"]
    secretsmanager.put_secret_value(
        SecretId=f"{stack_name}/sftp/private_key", SecretString=key_pair.private_pem
    )
    removed = []
    for key in earlier:
        transfer.delete_ssh_public_key(
            ServerId=server_id, UserName=user_name, SshPublicKeyId=key["SshPublicKeyId"]
        )
        removed.append(str(key["SshPublicKeyId"]))
    return SftpKeyRotation(
        server_id=server_id,
        user_name=user_name,
        ssh_public_key_id=str(imported),
        public_openssh=key_pair.public_openssh,
        private_pem=key_pair.private_pem,
        removed_key_ids=tuple(removed),
    )
