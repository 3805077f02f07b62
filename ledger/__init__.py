"""The fieldpos ledger: verifies signed requests, posts them double-entry, answers with signed Results.

``store`` owns the schema and the one posting path, ``postings`` the pure rules (message → postings),
``service`` the MQTT loop, ``verify`` the replay of the books.
"""
