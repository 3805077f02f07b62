"""Offline time on a board without a battery-backed clock: the monotonic clock since boot plus the
last point the terminal knew the ledger's time bounds how long it sells offline, across reboots,
whatever its wall clock says. The board is simulated: a ManualClock whose monotonic clock starts
again at 0 at each boot, a boot id per boot, and the outbox file that survives."""

import pytest

from host_sim.devices.clock import ManualClock
from protocol.messages import Blocklist, OfflinePolicy
from terminal import offline
from terminal.offline_state import CONTACT_SAVE_INTERVAL_MS, TerminalState
from terminal.outbox import Outbox

SECOND_MS = 1_000
DAY_MS = 86_400_000
CARD_COUNT = 50
POLICY = OfflinePolicy(max_transaction_fen=20_000, max_card_fen=30_000, max_terminal_fen=2_000_000, max_count=500,
                       max_offline_ms=30 * SECOND_MS, max_reboots=3, blocklist_max_age_ms=DAY_MS,
                       allowed_modes="free")


class Board:
    """One Pi: its SD card (the outbox file) outlives every boot; its clocks do not."""

    def __init__(self, path, policy=POLICY):
        self.outbox = Outbox(path)
        self.true_ms = ManualClock().now_ms()  # what a clock on the wall of the ledger's office says
        self.boots = 0
        self.state = None
        self.boot(wall_error_ms=0)
        self.state.save_config(1, self.true_ms, policy)

    def boot(self, *, wall_error_ms: int, off_ms: int = 0) -> None:
        """Power on after ``off_ms`` switched off; the wall clock is off by ``wall_error_ms``."""
        self.true_ms += off_ms
        self.boots += 1
        self.clock = ManualClock(now_ms=self.true_ms + wall_error_ms, monotonic_ms=0)
        self.state = TerminalState(self.outbox, monotonic_ms=self.clock.monotonic_ms, wall_ms=self.clock.now_ms,
                                   boot_id=f"boot-{self.boots}")

    def run_ms(self, duration_ms: int) -> None:
        self.true_ms += duration_ms
        self.clock.advance_ms(duration_ms)
        self.state.note_alive()  # the app does this every turn

    def hear_from_the_ledger(self, *, blocklist_age_ms: int = 0) -> None:
        self.state.contact(self.true_ms)
        snapshot = Blocklist(park="P1", version=self.state.blocklist.version + 1,
                             issued_ms=self.true_ms - blocklist_age_ms, blocked=(), low=())
        assert self.state.blocklist.accept_snapshot(snapshot)
        self.state.save_blocklist()

    def try_to_sell(self, card_number: int, amount_fen: int = 500):
        """The app's offline path: decide with one "now", count the sale, keep the window."""
        state = self.state
        now_ms, is_uncertain = state.now_ms()
        card_key = (f"C{card_number % CARD_COUNT:05d}", 1)
        refusal = offline.decide(state.policy, state.blocklist, state.window, card_key=card_key,
                                 amount_fen=amount_fen, mode="free", needs_pin=False, now_ms=now_ms,
                                 last_contact_ms=state.last_contact_ms, known_balance_fen=None)
        if refusal is None:
            state.window.add(card_key, amount_fen, now_ms)
            state.save_window()
        return refusal, now_ms, is_uncertain


@pytest.fixture
def board(tmp_path):
    board = Board(tmp_path / "outbox.db")
    yield board
    board.outbox.close()


def sell_every_second(board, seconds: int) -> list:
    """(true ms, refusal, dated ms, is uncertain) for a sale tried each second."""
    tried = []
    for number in range(seconds):
        board.run_ms(SECOND_MS)
        refusal, dated_ms, is_uncertain = board.try_to_sell(number)
        tried.append((board.true_ms, refusal, dated_ms, is_uncertain))
    return tried


def test_a_board_rebooted_offline_with_its_wall_clock_two_days_behind_sells_no_longer_than_the_policy_allows(board):
    board.hear_from_the_ledger()
    last_contact_ms = board.true_ms
    before_reboot = sell_every_second(board, 15)
    assert all(refusal is None for _, refusal, _, _ in before_reboot)  # 15 s into a 30 s allowance
    board.boot(wall_error_ms=-2 * DAY_MS, off_ms=5 * SECOND_MS)  # a power cut; no battery for the clock
    after_reboot = sell_every_second(board, 60)

    sold = [(true_ms, dated_ms) for true_ms, refusal, dated_ms, _ in before_reboot + after_reboot if refusal is None]
    running_ms = (sold[-1][0] - last_contact_ms) - 5 * SECOND_MS  # the board's own running time, without the cut
    assert running_ms <= POLICY.max_offline_ms
    assert len(sold) >= 25  # it did keep selling after the reboot, until its allowance ran out
    assert after_reboot[-1][1] == offline.OFFLINE_TOO_LONG
    dates = [dated_ms for _, dated_ms in sold]
    assert dates == sorted(set(dates))  # no sale dated before the one before it
    assert all(dated_ms >= last_contact_ms for dated_ms in dates)  # none dated before the cut, as the wall clock would
    assert all(is_uncertain for _, refusal, _, is_uncertain in after_reboot if refusal is None)
    assert board.state.window.reboots == 1


def test_the_blocklist_age_runs_on_the_same_clock_after_a_reboot(tmp_path):
    board = Board(tmp_path / "outbox.db", POLICY.__class__(**{**POLICY.to_obj(), "max_offline_ms": DAY_MS}))
    try:
        board.hear_from_the_ledger(blocklist_age_ms=DAY_MS - 20 * SECOND_MS)  # 20 s of validity left
        board.run_ms(5 * SECOND_MS)
        board.boot(wall_error_ms=-2 * DAY_MS)
        tried = sell_every_second(board, 40)
        sold = [true_ms for true_ms, refusal, _, _ in tried if refusal is None]
        assert sold and tried[-1][1] == offline.BLOCKLIST_EXPIRED
        # The 5 s it ran before the reboot were not on disk yet (the alive point is written every
        # CONTACT_SAVE_INTERVAL_MS, and at each sale): that is all a reboot can stretch.
        stretched_ms = sold[-1] - board.state.blocklist.issued_ms - POLICY.blocklist_max_age_ms
        assert 0 < stretched_ms <= CONTACT_SAVE_INTERVAL_MS
    finally:
        board.outbox.close()


def test_time_saved_by_a_running_board_counts_even_without_sales_or_answers(board):
    """The alive point is written while offline too, not only when the ledger answers."""
    board.hear_from_the_ledger()
    contact_ms = board.true_ms
    board.run_ms(25 * SECOND_MS)  # idle offline, the app's turns running
    for _ in range(3):
        board.run_ms(CONTACT_SAVE_INTERVAL_MS // 2)
    board.boot(wall_error_ms=-2 * DAY_MS)
    now_ms, is_uncertain = board.state.now_ms()
    assert is_uncertain and now_ms >= contact_ms + 25 * SECOND_MS
    assert board.try_to_sell(1)[0] == offline.OFFLINE_TOO_LONG


def test_a_process_restart_within_one_boot_keeps_exact_time_and_is_no_reboot(board):
    board.hear_from_the_ledger()
    assert board.try_to_sell(1)[0] is None
    board.run_ms(CONTACT_SAVE_INTERVAL_MS + 3 * SECOND_MS)
    clock = board.clock
    board.state = TerminalState(board.outbox, monotonic_ms=clock.monotonic_ms, wall_ms=clock.now_ms,
                                boot_id=f"boot-{board.boots}")  # systemd restarted the process, same boot
    assert board.state.now_ms() == (board.true_ms, False)
    assert board.state.window.reboots == 0


def test_a_wall_clock_ahead_after_a_reboot_is_believed_and_a_step_back_does_not_undo_it(board):
    board.hear_from_the_ledger()
    board.run_ms(2 * SECOND_MS)
    board.boot(wall_error_ms=DAY_MS)  # a day ahead: selling stops, the safe side
    assert board.state.now_ms() == (board.true_ms + DAY_MS, True)
    assert board.try_to_sell(1)[0] in (offline.OFFLINE_TOO_LONG, offline.BLOCKLIST_EXPIRED)
    board.clock.set_now_ms(board.true_ms)  # NTP steps the wall clock back
    assert board.state.now_ms()[0] >= board.true_ms + DAY_MS


def test_offline_sales_stop_once_the_board_has_rebooted_more_often_than_the_policy_allows(tmp_path):
    board = Board(tmp_path / "outbox.db", POLICY.__class__(**{**POLICY.to_obj(), "max_reboots": 2,
                                                               "max_offline_ms": DAY_MS}))
    try:
        board.hear_from_the_ledger()
        assert board.try_to_sell(1)[0] is None
        outcomes = []
        for _ in range(3):
            board.boot(wall_error_ms=-2 * DAY_MS, off_ms=SECOND_MS)
            board.run_ms(SECOND_MS)
            outcomes.append(board.try_to_sell(2)[0])
        assert outcomes == [None, None, offline.TOO_MANY_REBOOTS]
        assert board.state.window.reboots == 3
    finally:
        board.outbox.close()


def test_the_parks_rules_from_the_signed_config_survive_a_reboot_and_an_older_saved_config_has_none(tmp_path):
    from protocol.messages import ParkRules

    rules = ParkRules(no_pin_limit_fen=5000, card_fee_fen=2000, damage_fee_fen=1000)
    board = Board(tmp_path / "outbox.db")
    # A config saved before configs carried rules loads with none: the till goes by its station config.
    board.state._put("config", {"version": [1, board.true_ms], "policy": POLICY.to_obj()})
    board.boot(wall_error_ms=0)
    assert board.state.policy == POLICY and board.state.rules is None
    board.state.save_config(2, board.true_ms, POLICY, rules)
    board.boot(wall_error_ms=0, off_ms=60 * SECOND_MS)
    assert board.state.rules == rules and board.state.config_version == (2, board.true_ms - 60 * SECOND_MS)
