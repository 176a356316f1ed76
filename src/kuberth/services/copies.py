"""Reading the watch-fed copies (informers) from the event loop."""

from __future__ import annotations

import asyncio
from typing import Any

from kuberth.storage.kubernetes.informer import Informer


async def require_synced(informer: Informer[Any], timeout: float) -> None:
    """:meth:`Informer.require_synced` for a read on the event loop: at once when the copy has
    its first list (every request after the first few), else waited for in a worker thread, so
    the loop never blocks on it.

    Raises:
        KubernetesUnavailableError: no list has been stored within ``timeout`` seconds.
    """
    if not informer.synced:
        await asyncio.to_thread(informer.require_synced, timeout)
