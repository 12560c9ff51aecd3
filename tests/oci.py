"""A tiny container image, written by hand as an OCI image layout, for skopeo to push and pull.

One empty layer, a config and a manifest: enough for a registry to accept and serve, with
no image tools and no network.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path


def _blob(root: Path, data: bytes) -> dict[str, object]:
    digest = hashlib.sha256(data).hexdigest()
    path = root / "blobs" / "sha256" / digest
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def write_oci_layout(root: Path, tag: str = "latest") -> Path:
    """An OCI image layout in ``root`` (``oci:ROOT:TAG`` for skopeo)."""
    root.mkdir(parents=True, exist_ok=True)
    layer_tar = io.BytesIO()
    with tarfile.open(fileobj=layer_tar, mode="w") as tar:
        info = tarfile.TarInfo("hello.txt")
        data = b"runas-async test image\n"
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    layer_bytes = layer_tar.getvalue()
    layer = _blob(root, layer_bytes)
    diff_id = layer["digest"]
    config = _blob(
        root,
        json.dumps(
            {
                "architecture": "amd64",
                "os": "linux",
                "rootfs": {"type": "layers", "diff_ids": [diff_id]},
                "config": {},
            }
        ).encode(),
    )
    manifest = _blob(
        root,
        json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", **layer}],
            }
        ).encode(),
    )
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                **manifest,
                "annotations": {"org.opencontainers.image.ref.name": tag},
            }
        ],
    }
    (root / "index.json").write_text(json.dumps(index))
    (root / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    return root
