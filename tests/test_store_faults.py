"""A full or failing ledger disk is the machine's fault, never a message's: the ledger stops taking
requests (they wait at the broker and in the tills' outboxes), raises STORE_UNAVAILABLE, and takes
them again by itself once a test write works. Nothing is set aside, lost or booked twice.

Two ways to fill the disk: SQLite's own "database or disk is full" injected under the store (runs
everywhere), and a real size-limited tmpfs holding the ledger's home (needs root and mount)."""

import errno
import os
import re
import shutil
import sqlite3
import subprocess
import threading
import time

import pytest

from host_sim.rig import card, common, single_line
from ledger.errors import StoreUnavailableError, TransientStoreError
from ledger.store import Store, store_fault
from ledger.verify import unfinished_seqs, verify_books
from protocol.messages import CardIssue, Charge
from terminal.net import NoResultError
from ledger.park_home import ParkHome

from .helpers.waiting import wait_until

# Full disks, I/O errors and locks of the SQLite file itself.
pytestmark = pytest.mark.sqlite_only(reason="fills, breaks or locks the ledger.db file")

SELLERS = {"T-FISH-1": card("C00501"), "T-FISH-2": card("C00502"), "T-RIDE-1": card("C00503")}
SALES_EACH = 10
MAX_SALES_EACH = 60  # 60 x 1.50 from a 100.00 card: never short of money
SALE_FEN = 150
_WRITE = re.compile(r"\s*(INSERT|UPDATE|DELETE|REPLACE|COMMIT)", re.IGNORECASE)


class FillingDisk:
    """The ledger's SQLite connection, with a disk that can fill up: while ``is_full`` every write
    fails as SQLite fails on a full disk. Reads and rollbacks still work, as they do there."""

    def __init__(self, db):
        self._db = db
        self.is_full = False
        self.refused_writes = 0

    def _check(self, sql):
        if self.is_full and _WRITE.match(sql):
            self.refused_writes += 1
            raise sqlite3.OperationalError("database or disk is full")

    def execute(self, sql, *args):
        self._check(sql)
        return self._db.execute(sql, *args)

    def executemany(self, sql, *args):
        self._check(sql)
        return self._db.executemany(sql, *args)

    def __getattr__(self, name):
        return getattr(self._db, name)


# ---------------------------------------------------------------- the classification
@pytest.mark.parametrize("error", [
    sqlite3.OperationalError("database or disk is full"),
    sqlite3.OperationalError("disk I/O error"),
    sqlite3.OperationalError("attempt to write a readonly database"),
    sqlite3.OperationalError("unable to open database file"),
    OSError(errno.ENOSPC, "No space left on device"),
    OSError(errno.EIO, "Input/output error"),
    OSError(errno.EROFS, "Read-only file system"),
])
def test_a_full_failing_or_read_only_disk_is_the_store_being_unavailable(error):
    assert isinstance(store_fault(error), StoreUnavailableError)


def test_a_lock_is_only_busy_and_a_bug_is_no_store_fault():
    busy = store_fault(sqlite3.OperationalError("database is locked"))
    assert isinstance(busy, TransientStoreError) and not isinstance(busy, StoreUnavailableError)
    assert store_fault(sqlite3.OperationalError("no such column: fen2")) is None
    assert store_fault(ValueError("a bug")) is None


def test_a_batch_on_a_full_disk_raises_store_unavailable_and_keeps_nothing(tmp_path):
    store = Store(tmp_path / "ledger.db")
    store.add_park("P1", "Park")
    disk = store.db = FillingDisk(store.db)
    disk.is_full = True
    with pytest.raises(StoreUnavailableError):
        with store.batch():
            store.record_alert(1, "TEST", "written on a full disk")
    with pytest.raises(StoreUnavailableError):
        store.probe(1)
    disk.is_full = False
    store.probe(2)
    assert store.db.execute("SELECT COUNT(*) FROM alert").fetchone()[0] == 0
    store.close()


# ---------------------------------------------------------------- through the real broker
def _issue_cards(rig):
    desk = rig.link("T-DESK-1")
    for visitor in SELLERS.values():
        issued = desk.submit(lambda seq, v=visitor: CardIssue(**common(desk, seq, v), card_kind="temporary", card_fee_fen=2000,
                                                              opening_fen=10_000, channel="cash", payment_ref=""))
        assert issued.is_approved


def _sell(rig, terminal_id, visitor, results, errors, give_up_at, outage_over):
    """A till selling at least SALES_EACH times and on until the outage is over (a disk that fills
    up is noticed only when SQLite next needs a new block: a reused WAL can go on for a while);
    each sale is re-sent until its Result comes, as a till does."""
    link = rig.link(terminal_id, resend_interval_s=0.5)
    try:
        sold = 0
        while sold < SALES_EACH or (not outage_over.is_set() and sold < MAX_SALES_EACH):
            pending = link.enqueue(lambda seq: Charge(**common(link, seq, visitor), amount_fen=SALE_FEN,
                                                      lines=single_line("鱼饵 Bait", SALE_FEN)))
            while True:
                try:
                    results.append((terminal_id, link.send(pending, timeout_s=1.0)))
                    sold += 1
                    break
                except NoResultError:
                    if time.monotonic() > give_up_at:
                        raise
    except Exception as error:  # reported by the test, not lost in a thread
        errors.append(error)


def _sell_through_an_outage(rig, fill, free):
    _issue_cards(rig)
    ledger = rig.ledger
    results, errors, outage_over = [], [], threading.Event()
    give_up_at = time.monotonic() + 120
    sellers = [threading.Thread(target=_sell, args=(rig, t, v, results, errors, give_up_at, outage_over))
               for t, v in SELLERS.items()]
    for seller in sellers:
        seller.start()
    wait_until(lambda: len(results) >= 6 or errors, 60, "the first sales")
    fill()
    wait_until(lambda: ledger.store_outages >= 1 or errors, 60, "the ledger to notice the full disk")
    wait_until(lambda: ledger.failed_store_probes >= 2 or errors, 60, "two failed test writes")
    answered_while_full = len(results)
    free()
    wait_until(lambda: ledger.store_outage is None or errors, 60, "the ledger to take requests again")
    outage_over.set()
    for seller in sellers:
        seller.join(150)
    assert not errors, errors
    return results, answered_while_full


def _assert_nothing_lost(rig, results):
    total = len(results)
    assert total >= len(SELLERS) * SALES_EACH and all(result.is_approved for _, result in results), results
    assert len({result.txn for _, result in results}) == total  # each sale booked once, answered once
    store = rig.home.open_store()
    try:
        charges = store.db.execute("SELECT COUNT(*) FROM txn WHERE kind='charge'").fetchone()[0]
        set_aside = store.db.execute("SELECT COUNT(*) FROM set_aside").fetchone()[0]
        crashes = store.db.execute("SELECT COUNT(*) FROM poison").fetchone()[0]
        blamed = store.db.execute(
            "SELECT COALESCE(SUM(count), 0) FROM refusal_count WHERE reason IN ('SET_ASIDE', 'INTERNAL_ERROR')").fetchone()[0]
        alerts = [detail for (detail,) in store.db.execute("SELECT detail FROM alert WHERE kind='STORE_UNAVAILABLE'")]
        balances = [store.card_balances("P1", visitor.account)[0] for visitor in SELLERS.values()]
        books = verify_books(store)
        unfinished = unfinished_seqs(store)
    finally:
        store.close()
    assert charges == total
    assert (set_aside, crashes, blamed) == (0, 0, 0)
    assert len(alerts) == 1 and "could not be written for" in alerts[0], alerts
    sold = {terminal: sum(1 for t, _ in results if t == terminal) for terminal in SELLERS}
    assert balances == [10_000 - sold[terminal] * SALE_FEN for terminal in SELLERS]
    assert books.is_ok, books.problems
    assert unfinished.is_finished, [str(run) for run in unfinished.runs]


def test_tills_keep_selling_while_the_ledger_disk_fills_and_every_sale_is_booked_once_when_space_returns(rig):
    disk = FillingDisk(rig.ledger.intake.store.db)
    rig.ledger.intake.store.db = disk

    def fill():
        disk.is_full = True

    def free():
        disk.is_full = False

    results, _ = _sell_through_an_outage(rig, fill, free)
    assert disk.refused_writes > 0
    _assert_nothing_lost(rig, results)


# ---------------------------------------------------------------- a real full filesystem
def _mount_tmpfs(where, size):
    if os.geteuid() != 0:
        pytest.skip("a real full filesystem needs root to mount a size-limited tmpfs (the injected test covers CI)")
    if shutil.which("mount") is None:
        pytest.skip("no mount command to make a size-limited tmpfs")
    where.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (a container without CAP_SYS_ADMIN?): {done.stderr.strip()}")


def _fill(directory):
    """Write a filler file until the filesystem says it is full."""
    filler = directory / "filler"
    with open(filler, "wb", buffering=0) as file:
        for chunk in (1 << 20, 4096, 512):
            try:
                while True:
                    file.write(b"\0" * chunk)
            except OSError as error:
                assert error.errno == errno.ENOSPC, error
    return filler


def test_a_ledger_home_on_a_real_filesystem_that_fills_up_loses_no_sale_and_sets_none_aside(stopped_rig, tmp_path):
    rig = stopped_rig
    mount = tmp_path / "small-disk"
    _mount_tmpfs(mount, "24m")
    try:
        # The broker keeps running from the normal disk; the ledger's whole home moves to the small one.
        shutil.copytree(rig.home.home, mount / "ledger-home")
        rig.home = ParkHome(mount / "ledger-home")
        rig.start_ledger()
        filler = []
        results, _ = _sell_through_an_outage(rig, lambda: filler.append(_fill(mount)), lambda: filler[0].unlink())
        _assert_nothing_lost(rig, results)
    finally:
        rig.stop_ledger()
        if rig._reader is not None:
            rig._reader.close()
            rig._reader = None
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)
