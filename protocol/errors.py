"""The error tree of fieldpos.

Every error carries a stable ``code`` that appears on screens, receipts and logs, and a message a
cashier or technician can act on. Each package (protocol, terminal, ledger, tools, host_sim) hangs
its own subtree under :class:`FieldposError`; this root lives here because every package imports
``protocol`` and ``protocol`` imports nothing of ours.
"""


class FieldposError(Exception):
    """Root of every error fieldpos raises on purpose."""

    code = "FIELDPOS"

    def __init__(self, message: str = "", *, code: str | None = None):
        if code is not None:
            self.code = getattr(code, "value", code)  # a Reason enum member or a plain string
        super().__init__(message or self.__doc__ or self.code)

    def __str__(self) -> str:
        return f"[{self.code}] {self.args[0]}"


class ProtocolError(FieldposError):
    """A message broke the wire protocol."""

    code = "PROTOCOL"


class LocalProtocolError(ProtocolError):
    """We were about to send something the protocol forbids (a bug on our side)."""

    code = "LOCAL_PROTOCOL"


class RemoteProtocolError(ProtocolError):
    """The peer sent something the protocol forbids; ``code`` is the reason code to answer with."""

    code = "REMOTE_PROTOCOL"
