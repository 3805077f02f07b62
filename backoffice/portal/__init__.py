"""The member portal (issue 17): a mobile-first site beside the back office where members log in
with their phone and a one-time code, open an e-card, see balance, points and history, change the
PIN, report a card lost, and share a record of their visit behind a link they can revoke."""
