"""Test helpers that ship with aisle, for its own tests, benchmarks and users' tests:
an OpenAI-compatible stub server with fault injection, an image-endpoint stub, and
schema-driven fake answers.
"""

from aisle.testing.image_stub import (
    ONE_PIXEL_PNG,
    ImageStubServer,
    RawReply,
    RecordedRequest,
    image_stub_server,
)
from aisle.testing.processes import live_group_members
from aisle.testing.schema_instance import schema_instance, schema_reply
from aisle.testing.stub_server import Fault, StubServer, spawn_stub

__all__ = ["ONE_PIXEL_PNG", "Fault", "ImageStubServer", "RawReply", "RecordedRequest",
           "StubServer", "image_stub_server", "live_group_members", "schema_instance",
           "schema_reply", "spawn_stub"]
