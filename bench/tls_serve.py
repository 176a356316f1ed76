"""`kuberth serve` over TLS, for the benchmarks that compare it with kube-apiserver (TLS only).

    python -m bench.tls_serve CERT KEY

`kuberth serve` has no TLS setting (a proxy in front terminates TLS); this runs the same command
with uvicorn's own TLS switched on, and nothing else changed, so that both sides of a comparison
pay for TLS. The settings come from the KUBERTH_* environment as for `kuberth serve`.
"""

from __future__ import annotations

import sys
from typing import Any

import uvicorn

from kuberth.cli import main


def serve_over_tls(certificate: str, key: str) -> None:
    """`kuberth serve`, every uvicorn.Config it makes given this certificate and key."""

    class Config(uvicorn.Config):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **{**kwargs, "ssl_certfile": certificate, "ssl_keyfile": key})

    vars(uvicorn)["Config"] = Config  # kuberth.cli reads uvicorn.Config when it serves
    sys.argv = [sys.argv[0], "serve"]
    main()


if __name__ == "__main__":
    serve_over_tls(sys.argv[1], sys.argv[2])
