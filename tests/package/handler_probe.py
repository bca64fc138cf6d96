"""Import one Lambda handler from a task root, as the Lambda runtime would; print the outcome as JSON.

Run by ``tests/package`` with the image's interpreter (CPython 3.12) as
``python3.12 -I -S -B handler_probe.py <task root> <module.attribute>``: isolated, without
site-packages, so ``sys.path`` is the standard library until the task root goes first. Standard
library only. Sockets refuse to connect and names to resolve: importing must not touch the network.
"""

from __future__ import annotations

import importlib
import json
import socket
import sys
import traceback
from typing import Any, NoReturn

network_attempts: list[str] = []


def _refuse(operation: str) -> Any:
    def refuse(*args: Any, **kwargs: Any) -> NoReturn:
        network_attempts.append(f"{operation}{args[1:] if operation.startswith('socket.') else args}")
        raise ConnectionRefusedError(f"{operation} while importing a Lambda handler")

    return refuse


def _block_network() -> None:
    for method in ("connect", "connect_ex", "sendto", "sendmsg"):
        setattr(socket.socket, method, _refuse(f"socket.{method}"))
    for function in ("getaddrinfo", "gethostbyname", "gethostbyname_ex", "create_connection"):
        setattr(socket, function, _refuse(function))


def _foreign_modules(task_root: str) -> list[str]:
    """Modules loaded from anywhere but the task root and the standard library."""
    allowed = (task_root, sys.base_prefix)
    return sorted(
        name
        for name, module in list(sys.modules.items())
        if name not in ("__main__", "__mp_main__")
        and (path := getattr(module, "__file__", None))
        and not str(path).startswith(allowed)
    )


def probe(task_root: str, handler: str) -> dict[str, Any]:
    outside = [path for path in sys.path if not path.startswith(sys.base_prefix)]
    sys.path.insert(0, task_root)
    _block_network()
    module_name, _, attribute = handler.rpartition(".")
    outcome: dict[str, Any] = {"handler": handler, "sys_path_outside_stdlib": outside}
    try:
        target = getattr(importlib.import_module(module_name), attribute)
    except Exception as error:
        outcome |= {"error": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc()}
    else:
        outcome |= {"callable": callable(target), "type": type(target).__name__}
    top_level = {name.split(".")[0] for name in sys.modules}
    return outcome | {
        "network_attempts": network_attempts,
        "foreign_modules": _foreign_modules(task_root),
        "third_party": sorted(top_level - set(sys.stdlib_module_names) - {"__main__", "__mp_main__"}),
    }


if __name__ == "__main__":
    print(json.dumps(probe(sys.argv[1], sys.argv[2])))
