"""``--k8s-secret NAME``: the logins as Kubernetes Secrets."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any


def k8s_secrets(name: str, namespaces: Sequence[str], document: str) -> str:
    """A ``List`` of one Secret per namespace (none: the kubeconfig's), holding ``document``
    as ``.dockerconfigjson``; JSON, which ``kubectl apply -f -`` reads as it reads YAML."""
    data = base64.b64encode(document.encode()).decode()
    items = []
    for namespace in namespaces or (None,):
        metadata: dict[str, Any] = {"name": name}
        if namespace is not None:
            metadata["namespace"] = namespace
        items.append(
            {
                "kind": "Secret",
                "apiVersion": "v1",
                "metadata": metadata,
                "data": {".dockerconfigjson": data},
                "type": "kubernetes.io/dockerconfigjson",
            }
        )
    return json.dumps({"kind": "List", "apiVersion": "v1", "items": items}, indent=2) + "\n"
