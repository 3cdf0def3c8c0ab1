"""The ivcap-client half of tests/it/sdk_interop.rs: one step per run, chosen by STEP, its
result printed as one JSON line.

Mode: with STORE set, LocalIVCAP(base_dir=STORE); otherwise IVCAP() from IVCAP_URL and
IVCAP_JWT (the stand-in). Bytes travel base64-encoded so that the Rust side compares them
exactly.
"""

import base64
import io
import json
import os
import uuid

from ivcap_client import IVCAP
from ivcap_client.ivcap import LocalIVCAP


def client():
    store = os.environ.get("STORE")
    return LocalIVCAP(base_dir=store) if store else IVCAP()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def content_of(artifact) -> bytes:
    # A platform artifact is fetched over HTTP; a local one is the file itself.
    if hasattr(artifact, "as_stream"):
        return b"".join(artifact.as_stream())
    return artifact.as_local_file().read_bytes()


def write(ivcap):
    """The SDK creates artifacts (a file, with its sidecar on the platform, and a stream), an
    aspect and, on the platform, a collection holding both artifacts: the stream joins at
    upload (`collection=`, the X-Collection header), the file with add_to_collection."""
    urn = None
    if not isinstance(ivcap, LocalIVCAP):  # LocalIVCAP has no collections
        urn = f"urn:ivcap:collection:{uuid.uuid4()}"
        ivcap.create_collection(urn, "SDK collection", description="made by ivcap-client")
    src = os.environ["SRC"]
    from_file = ivcap.upload_artifact(name=os.environ["NAME"], file_path=src)
    data = os.environ["STREAM"].encode()
    stream = ivcap.upload_artifact(
        name="sdk-stream.txt",
        io_stream=io.BytesIO(data),
        content_type="text/plain",
        content_size=len(data),
        collection=urn,
    )
    if urn:
        ivcap.add_to_collection(urn, from_file.id)
    content = json.loads(os.environ["CONTENT"])
    aspect = ivcap.add_aspect(os.environ["ENTITY"], content, schema=os.environ["SCHEMA"])
    return {"file": from_file.id, "stream": stream.id, "aspect": aspect.id, "collection": urn}


def read(ivcap):
    """The SDK reads back what this server created."""
    artifact = ivcap.get_artifact(os.environ["ARTIFACT"])
    out = {"artifact": b64(content_of(artifact))}
    for_file = ivcap.artifact_for_file(os.environ["SRC"])
    out["for_file"] = None if for_file is None else {"id": for_file.id, "bytes": b64(content_of(for_file))}
    listed = ivcap.list_aspects(entity=os.environ["ENTITY"], limit=50)
    out["aspects"] = [{"id": a.id, "schema": a.schema, "content": a.content} for a in listed]
    out["aspect"] = ivcap.get_aspect(os.environ["ASPECT"]).content if hasattr(ivcap, "get_aspect") else None
    urn = os.environ["COLLECTION"]
    if isinstance(ivcap, LocalIVCAP):
        # No collection API locally: the collection is its aspects, read as such.
        records = ivcap.list_aspects(entity=urn, limit=50)
        out["collection"] = [{"schema": a.schema, "content": a.content} for a in records]
    else:
        c = ivcap.get_collection(urn)
        items = sorted(i.item for i in c.items(limit=50))
        out["collection"] = {"id": c.id, "name": c.name, "description": c.description, "items": items}
    return out


print(json.dumps({"write": write, "read": read}[os.environ["STEP"]](client())))
