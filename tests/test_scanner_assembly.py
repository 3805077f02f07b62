"""Scans from decoded text: the part both scanner drivers share (no I/O)."""

from __future__ import annotations

import pytest

from terminal.errors import ScanUnreadableError
from terminal.hal.scanner import PENDING_SCANS_LIMIT, SCAN_MAX_CHARS, ScanAssembler


def test_text_added_in_pieces_is_one_scan_at_its_end():
    assembler = ScanAssembler()
    assembler.add("ROD-")
    assert assembler.take() is None
    assembler.add("0042")
    assembler.end()

    assert assembler.take() == "ROD-0042"
    assert assembler.take() is None


def test_an_end_with_nothing_before_it_is_no_scan():
    assembler = ScanAssembler()
    assembler.end()
    assembler.end()

    assert not assembler.has_complete_scan


def test_a_scan_of_the_longest_allowed_length_is_kept_and_one_longer_is_refused_whole():
    assembler = ScanAssembler()
    assembler.add("A" * SCAN_MAX_CHARS)
    assembler.end()
    assembler.add("B" * SCAN_MAX_CHARS)
    assembler.add("B")
    assembler.end()

    assert assembler.take() == "A" * SCAN_MAX_CHARS
    with pytest.raises(ScanUnreadableError, match="too long"):
        assembler.take()


@pytest.mark.parametrize("character", ["\t", "\x00", "\x7f", "é", "票"])
def test_a_character_outside_printable_ascii_spoils_the_scan(character):
    assembler = ScanAssembler()
    assembler.add(f"ROD{character}7")
    assembler.end()
    assembler.add("ROD-8")
    assembler.end()

    with pytest.raises(ScanUnreadableError, match="no code holds"):
        assembler.take()
    assert assembler.take() == "ROD-8"


def test_a_discarded_half_scan_leaves_no_trace():
    assembler = ScanAssembler()
    assembler.add("BIKE-0")
    assembler.discard()
    assembler.add("BIKE-12")
    assembler.end()

    assert assembler.take() == "BIKE-12"


def test_scans_beyond_the_pending_limit_are_counted_not_kept():
    assembler = ScanAssembler()
    for number in range(PENDING_SCANS_LIMIT + 3):
        assembler.add(f"ROD-{number}")
        assembler.end()

    taken = [assembler.take() for _ in range(PENDING_SCANS_LIMIT)]

    assert taken == [f"ROD-{number}" for number in range(PENDING_SCANS_LIMIT)]
    assert assembler.take() is None
    assert assembler.lost_scan_count == 3
