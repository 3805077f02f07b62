"""The tap's one error type. ``code`` is a protocol reason code (the same words as
protocol.reasons.Reason), or one of the tap's own codes below."""

# The tap's own codes, for what never travels as a reason on the wire.
CARD_RECORD_INVALID = "CARD_RECORD_INVALID"  # as protocol.card_record.CardRecordError
LOCAL = "LOCAL"  # the tap was asked to build something the protocol does not allow


class TapError(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self):
        return "[" + self.code + "] " + self.message
