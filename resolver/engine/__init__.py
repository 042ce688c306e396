"""The resolver as one sans-I/O object (`Engine`) and the vocabulary of its inputs and outputs."""

from resolver.engine.engine import Client, Engine, Output, QueryLogSink, Reply
from resolver.engine.outbound import Close, Send
from resolver.engine.shared import SharedLookup, SharedStore

__all__ = [
    "Client",
    "Close",
    "Engine",
    "Output",
    "QueryLogSink",
    "Reply",
    "Send",
    "SharedLookup",
    "SharedStore",
]
