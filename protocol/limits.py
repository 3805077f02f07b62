"""Limits of the wire protocol. Every number has a reason; a message outside them is refused."""

PROTOCOL_VERSION = 1
# The ledger answers in the request's version and supports the previous one; v1 is the first.
SUPPORTED_VERSIONS = frozenset({1})

# Largest envelope (header + signature + body). A Charge with MAX_LINE_ITEMS long-named lines is
# about 3 KiB; 8 KiB leaves room without letting one message hog a terminal's RAM or the broker.
MAX_PAYLOAD_BYTES = 8 * 1024

# Config and blocklist snapshots are bigger than requests; the broker's message_size_limit (64 KiB)
# must stay above this. About 1,000 card entries fit.
MAX_BROADCAST_BYTES = 60 * 1024

# Upper bound on any single amount, in fen: 1,000,000.00 yuan would be a typo at a park station;
# Chinese prepaid-card rules cap named cards at 5,000 yuan, so 100,000.00 leaves headroom for
# group top-ups while stopping a slipped finger (or a forged 2**62) from reaching the books.
MAX_AMOUNT_FEN = 10_000_000

# A sequence number must survive JSON parsers that use doubles (2**53) and SQLite's int64.
MAX_SEQ = 2**53 - 1
MAX_TIME_MS = 2**53 - 1

MAX_LINE_ITEMS = 32
MAX_QUANTITY = 999
MAX_TEXT_CHARS = 64          # item names, operator ids, payment references
MAX_ID_CHARS = 32            # park, terminal, station, key ids: they appear in topics
CARD_UID_BYTES = (4, 7, 10)  # ISO 14443-3 single, double and triple size UIDs
NONCE_HEX_CHARS = 32
