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
# A station's menu as the ledger sends it (config ``station.menu``): the till picks an item with one
# digit key, 1 to 9, so a tenth item could never be sold.
MAX_MENU_ITEMS = 9
# The staff directory in every terminal's config: enough for a large leisure park's cashiers, desk
# staff and supervisors. The worst case (every name 64 Chinese characters, every id 32 characters)
# keeps a config under MAX_BROADCAST_BYTES; tests/test_park_settings.py checks it.
MAX_STAFF_ENTRIES = 120
MAX_QUANTITY = 999
MAX_TEXT_CHARS = 64          # item names, operator ids, payment references
MAX_ID_CHARS = 32            # park, terminal, station, key ids: they appear in topics
CARD_UID_BYTES = (4, 7, 10)  # ISO 14443-3 single, double and triple size UIDs
NONCE_HEX_CHARS = 32

# What a body's JSON may look like at all, checked while it is parsed (protocol.codec), before any
# field is read. A peer must not be able to choose how much work, memory or recursion a parse costs.
# Our messages nest 4 deep (config -> station -> menu -> item; body -> lines -> line); 8 leaves room for a
# later version without letting 3,000 brackets reach the parser's recursion.
MAX_JSON_DEPTH = 8
# 2**53 has 16 digits: no legal integer is longer, and the length is checked before int() runs.
MAX_NUMBER_DIGITS = 16
# The longest string we send is an e-card token (protocol.ecard.MAX_TOKEN_CHARS, 420: two Ed25519
# signatures and a public key in base32); a card record in hex is 192. The payload limit bounds a
# string too, but a named limit keeps a 8,000-character value out of every check and log line.
MAX_STRING_CHARS = 420
# The largest object is a request kind with 16 fields ("type" included); twice that is room enough.
MAX_FIELDS_PER_OBJECT = 32
# Field names are our own snake_case identifiers: printable, short, and safe in any error text.
MAX_FIELD_NAME_CHARS = 32

# A request's seq may be at most this far above the highest seq the ledger holds for its terminal
# (SEQ_TOO_FAR otherwise). A terminal's outbox holds at most 10,000 pending requests (terminal.outbox)
# and refusals leave gaps, so a genuine terminal stays far below it; it skips past the ledger's
# highest seq on every Welcome. Without it one signed request at seq 2**53-1 would be accepted and
# leave the terminal no seq to use.
MAX_SEQ_JUMP = 1_000_000
