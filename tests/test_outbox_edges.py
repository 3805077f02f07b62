"""The till's outbox at its edges: a Result is stored once for its own request, and asked for by seq
it comes back only once it is there. A real SQLite file, no broker.

Written to kill the operator mutants of tools/mutation.py the older tests let through.
"""

from terminal.outbox import Outbox

NOW_MS = 1_780_000_000_000


def request(seq):
    return f"request {seq}".encode(), f"{seq:064x}"


def test_a_result_is_stored_once_for_its_own_request_and_read_back_by_seq(tmp_path):
    outbox = Outbox(tmp_path / "outbox.db")
    try:
        first = outbox.append(request, NOW_MS)
        second = outbox.append(request, NOW_MS)
        assert (first.seq, second.seq) == (1, 2)
        assert outbox.result_for(2) is None                    # not answered yet
        assert outbox.result_for(9) is None                    # never sent
        assert outbox.complete(second.request_sha256, b"approved") == 2
        assert outbox.complete(second.request_sha256, b"again") is None   # done already
        assert outbox.complete("ff" * 32, b"stray") is None               # not ours
        assert outbox.result_for(2) == b"approved" and outbox.result_for(1) is None
        assert [pending.seq for pending in outbox.pending()] == [1]
    finally:
        outbox.close()
