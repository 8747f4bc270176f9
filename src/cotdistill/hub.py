"""Where a model comes from: a saved folder, the local Hugging Face cache or a reachable hub.
Light on purpose (no torch): the preflight asks it before anything loads."""
from __future__ import annotations

import functools
import re
import socket
from pathlib import Path
from urllib.parse import urlparse

# "org/name" or "name" (letters, digits, - _ .): anything else cannot be a hub id.
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


def looks_like_path(name: str) -> bool:
    return name.startswith(("/", ".", "~")) or not _HUB_ID.match(name)


def model_source_problem(name: str) -> str | None:
    """Why `name` cannot be loaded as a local model folder or hub id, or None if it may load."""
    p = Path(name).expanduser()
    if p.exists():
        if p.is_dir() and (p / "config.json").exists():
            return None
        return f"{name} exists but is not a saved model folder (no config.json in it)"
    if looks_like_path(name):
        return f"{name} does not exist (a local model folder was expected)"
    return _hub_problem(name)


def _hub_problem(repo_id: str) -> str | None:
    from huggingface_hub import constants, try_to_load_from_cache

    if isinstance(try_to_load_from_cache(repo_id, "config.json"), str):
        return None
    if constants.HF_HUB_OFFLINE:
        return (f"{repo_id!r} is not a local folder and not in the Hugging Face cache, and HF_HUB_OFFLINE is set; "
                f"pass the path of a saved model")
    endpoint = constants.ENDPOINT
    if not _reachable(endpoint):
        return (f"{repo_id!r} is not a local folder and no model hub is reachable ({endpoint}); pass the path of a "
                f"saved model, or set HF_ENDPOINT to a reachable hub")
    return None


@functools.lru_cache(maxsize=8)
def _reachable(url: str, timeout: float = 3.0) -> bool:
    """One TCP connection to the hub: a fast 'no' instead of ~25 s of retries inside from_pretrained."""
    u = urlparse(url)
    try:
        with socket.create_connection((u.hostname, u.port or (443 if u.scheme == "https" else 80)), timeout=timeout):
            return True
    except OSError:
        return False
