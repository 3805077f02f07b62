"""The fieldpos ledger: verifies signed requests, posts them double-entry, answers with signed Results.

``intake`` is the pipeline from bytes to signed replies, ``rules`` one pure rule per request kind
(view → decision), ``store`` the schema, ``apply`` and the one posting path, ``service`` the MQTT
loop, ``verify`` the replay of the books.
"""
