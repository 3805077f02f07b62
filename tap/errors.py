"""The tap's one error type. ``code`` is a protocol reason code (the same words as
protocol.reasons.Reason), or one of the tap's own codes below."""

# The tap's own codes, for what never travels as a reason on the wire.
CARD_RECORD_INVALID = "CARD_RECORD_INVALID"  # as protocol.card_record.CardRecordError
LOCAL = "LOCAL"  # the tap was asked to build something the protocol does not allow

# Reason codes the tap raises (protocol.reasons.Reason), each spelled once: a typo in a literal at
# the point of use would be a wrong code that nothing catches; a typo in a name fails at import.
VALUE_OUT_OF_RANGE = "VALUE_OUT_OF_RANGE"
WRONG_TYPE = "WRONG_TYPE"
UNKNOWN_TYPE = "UNKNOWN_TYPE"
MALFORMED_BODY = "MALFORMED_BODY"
NAN_NOT_ALLOWED = "NAN_NOT_ALLOWED"
BAD_KEY_ID = "BAD_KEY_ID"
UNSUPPORTED_VERSION = "UNSUPPORTED_VERSION"
UNSUPPORTED_ALGORITHM = "UNSUPPORTED_ALGORITHM"
UNKNOWN_KEY = "UNKNOWN_KEY"
UNKNOWN_FIELD = "UNKNOWN_FIELD"
TOPIC_MISMATCH = "TOPIC_MISMATCH"
TOO_MANY_FIELDS = "TOO_MANY_FIELDS"
STRING_TOO_LONG = "STRING_TOO_LONG"
NUMBER_TOO_LONG = "NUMBER_TOO_LONG"
MISSING_FIELD = "MISSING_FIELD"
LINES_DO_NOT_ADD_UP = "LINES_DO_NOT_ADD_UP"
FLOAT_NOT_ALLOWED = "FLOAT_NOT_ALLOWED"
DUPLICATE_FIELD = "DUPLICATE_FIELD"
BAD_SIGNATURE = "BAD_SIGNATURE"
BAD_FIELD_NAME = "BAD_FIELD_NAME"
AMOUNT_OUT_OF_RANGE = "AMOUNT_OUT_OF_RANGE"
TOO_DEEP = "TOO_DEEP"
TRUNCATED = "TRUNCATED"
OVERSIZE = "OVERSIZE"
BAD_MAGIC = "BAD_MAGIC"


class TapError(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self):
        return "[" + self.code + "] " + self.message


class BadSignature(Exception):
    """An Ed25519 signature that does not verify (tap.ed25519, either implementation)."""
