"""Small demo images built from source and packed as OCI archives, so a real node needs no registry.

Each image is one static Go binary in one layer. The archive is written with the standard library
alone (tar, gzip, sha256): an OCI image layout (``oci-layout``, ``index.json``, ``blobs/sha256/``)
that ``ctr images import`` takes as it is. Every byte is deterministic (no timestamps, fixed
owners), so the same source always gives the same digests.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

#: Where the images' Go sources live, inside the package.
SOURCES = Path(__file__).parent / "demo"

#: Registry-like prefix of every demo image; nothing is ever pulled from it.
REPOSITORY = "kuberth.local"

#: Bump when the archive format changes, so cached archives are rebuilt.
_FORMAT = "1"

#: The user the images run as: not root, and the UID distroless images use.
NON_ROOT = "65532:65532"


@dataclass(frozen=True)
class ImageSpec:
    """What goes into one image besides its binary: a demo image's Go source, or None for an image
    whose binary is built from a Go module (Traefik's)."""

    source: Path | None
    entrypoint: str
    user: str = NON_ROOT
    ports: tuple[int, ...] = ()
    env: dict[str, str] = field(default_factory=dict)


DEMO_IMAGES: dict[str, ImageSpec] = {
    # The pod sandbox: sleeps until told to stop, as registry.k8s.io/pause does.
    "pause": ImageSpec(source=SOURCES / "pause.go", entrypoint="/pause", user="65535:65535"),
    # Answers on 8080 with its namespace, pod and environment.
    "web": ImageSpec(
        source=SOURCES / "web.go", entrypoint="/web", ports=(8080,), env={"PORT": "8080"}
    ),
    # Logs a line every few seconds.
    "worker": ImageSpec(source=SOURCES / "worker.go", entrypoint="/worker"),
}

#: The real node's Ingress controller: Traefik's binary, built from its Go module, run as non-root.
TRAEFIK_IMAGE = ImageSpec(source=None, entrypoint="/traefik")


@dataclass(frozen=True)
class DemoImage:
    """A built demo image: its archive and the name the node knows it by."""

    name: str
    key: str
    archive: Path

    @property
    def reference(self) -> str:
        return f"{REPOSITORY}/{self.name}:{self.key}"


def image_key(name: str, go_version: str) -> str:
    """The content key (and tag) of an image: its source, the toolchain and the format."""
    spec = DEMO_IMAGES[name]
    assert spec.source is not None
    digest = hashlib.sha256()
    for part in (_FORMAT, go_version, json.dumps(_spec_fields(spec), sort_keys=True)):
        digest.update(part.encode() + b"\0")
    digest.update(spec.source.read_bytes())
    return digest.hexdigest()[:12]


def _spec_fields(spec: ImageSpec) -> dict[str, object]:
    return {"entrypoint": spec.entrypoint, "user": spec.user, "ports": spec.ports, "env": spec.env}


def layer_tar(path: str, content: bytes) -> bytes:
    """An uncompressed layer holding one executable at ``path`` (and ``/tmp``), deterministic."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tmp = tarfile.TarInfo("tmp")
        tmp.type, tmp.mode = tarfile.DIRTYPE, 0o1777
        tar.addfile(tmp)
        entry = tarfile.TarInfo(path.lstrip("/"))
        entry.size, entry.mode = len(content), 0o755
        tar.addfile(entry, io.BytesIO(content))
    return buffer.getvalue()


def _descriptor(media_type: str, blob: bytes) -> dict[str, object]:
    return {"mediaType": media_type, "digest": _digest(blob), "size": len(blob)}


def _digest(blob: bytes) -> str:
    return "sha256:" + hashlib.sha256(blob).hexdigest()


def oci_archive(reference: str, spec: ImageSpec, binary: bytes, *, arch: str) -> bytes:
    """The bytes of an OCI image-layout tar holding one image, named ``reference``."""
    layer = layer_tar(spec.entrypoint, binary)
    compressed = gzip.compress(layer, mtime=0)
    config: dict[str, object] = {
        "architecture": arch,
        "os": "linux",
        "config": {
            "Entrypoint": [spec.entrypoint],
            "User": spec.user,
            "Env": [f"{k}={v}" for k, v in sorted(spec.env.items())],
            "ExposedPorts": {f"{port}/tcp": {} for port in spec.ports},
            "WorkingDir": "/",
        },
        "rootfs": {"type": "layers", "diff_ids": [_digest(layer)]},
    }
    config_blob = _json(config)
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": _descriptor("application/vnd.oci.image.config.v1+json", config_blob),
        "layers": [_descriptor("application/vnd.oci.image.layer.v1.tar+gzip", compressed)],
    }
    manifest_blob = _json(manifest)
    tag = reference.rsplit(":", 1)[1]
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {
                **_descriptor("application/vnd.oci.image.manifest.v1+json", manifest_blob),
                "platform": {"architecture": arch, "os": "linux"},
                "annotations": {
                    "io.containerd.image.name": reference,
                    "org.opencontainers.image.ref.name": tag,
                },
            }
        ],
    }
    files = {
        "oci-layout": _json({"imageLayoutVersion": "1.0.0"}),
        "index.json": _json(index),
        **{
            f"blobs/sha256/{_digest(blob).split(':')[1]}": blob
            for blob in (compressed, config_blob, manifest_blob)
        },
    }
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for directory in ("blobs", "blobs/sha256"):
            entry = tarfile.TarInfo(directory)
            entry.type, entry.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(entry)
        for name, blob in files.items():
            entry = tarfile.TarInfo(name)
            entry.size, entry.mode = len(blob), 0o644
            tar.addfile(entry, io.BytesIO(blob))
    return buffer.getvalue()


def write_image(path: Path, reference: str, spec: ImageSpec, binary: bytes, *, arch: str) -> None:
    """Write :func:`oci_archive` to ``path``."""
    path.write_bytes(oci_archive(reference, spec, binary, arch=arch))


def _json(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()
