"""Test helpers that ship with aisle, for its own tests, benchmarks and users' tests:
an OpenAI-compatible stub server with fault injection, and schema-driven fake answers.
"""

from aisle.testing.processes import live_group_members
from aisle.testing.schema_instance import schema_instance, schema_reply
from aisle.testing.stub_server import Fault, StubServer, spawn_stub

__all__ = ["Fault", "StubServer", "live_group_members", "schema_instance", "schema_reply",
           "spawn_stub"]
