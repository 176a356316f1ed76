"""The OCI archive writer: a valid, deterministic one-layer image layout."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile

from kuberth.cluster.images import DEMO_IMAGES, oci_archive


def test_an_archive_is_a_deterministic_oci_layout_whose_digests_match() -> None:
    spec = DEMO_IMAGES["web"]
    archive = oci_archive("kuberth.local/web:abc", spec, b"\x7fELF binary", arch="amd64")
    assert archive == oci_archive("kuberth.local/web:abc", spec, b"\x7fELF binary", arch="amd64")

    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
    assert json.loads(files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    for name, blob in files.items():
        if name.startswith("blobs/sha256/"):
            assert hashlib.sha256(blob).hexdigest() == name.rsplit("/", 1)[1]
    index = json.loads(files["index.json"])
    entry = index["manifests"][0]
    assert entry["annotations"]["io.containerd.image.name"] == "kuberth.local/web:abc"
    manifest = json.loads(files["blobs/sha256/" + entry["digest"].split(":")[1]])
    config = json.loads(files["blobs/sha256/" + manifest["config"]["digest"].split(":")[1]])
    assert config["config"]["User"] == "65532:65532"
    assert config["config"]["ExposedPorts"] == {"8080/tcp": {}}
    layer = files["blobs/sha256/" + manifest["layers"][0]["digest"].split(":")[1]]
    import gzip

    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(layer))) as tar:
        web = tar.getmember("web")
        assert web.mode == 0o755
        assert web.mtime == 0
    assert config["rootfs"]["diff_ids"] == [
        "sha256:" + hashlib.sha256(gzip.decompress(layer)).hexdigest()
    ]
