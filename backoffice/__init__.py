"""The park's back-office web console: reports, dashboard and (later) administration for named
console users with roles. It reads the ledger through read-only connections and keeps its own
accounts, sessions and audit log in a separate database in the park home (``console.db``)."""
