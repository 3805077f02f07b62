"""fieldpos wire protocol, sans I/O.

Message types, their exact bytes, Ed25519 envelopes bound to a purpose and a topic, topic names,
limits and reason codes. Imports none of the other fieldpos packages and does no I/O: no sockets,
files or clocks (time is always passed in). Both the terminal and the ledger import it;
docs/PROTOCOL.md describes the same thing for a third party.
"""
