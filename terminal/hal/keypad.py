"""The keypad as the terminal app sees it: one key at a time, with a bounded wait.

A backend subclasses :class:`Keypad` and must implement :meth:`Keypad.read_key`; it may override
:meth:`Keypad.close` (the default does nothing). The real backend is
``terminal.drivers.keypad_evdev.EvdevKeypad`` (a USB numeric keypad through Linux evdev); in the host
simulator the same driver reads ``host_sim.devices.keypad.EmulatedKeypad``, which writes real input events
into a pipe.

The app's loop::

    key = keypad.read_key(timeout_s=0.05)   # None when nothing was pressed: poll the card reader
    if key is Key.ENTER:
        ...
    elif key is not None and key.is_digit:
        amount_text += key.value

Only presses are reported: a key held down does not type twice, except :attr:`Key.BACK`, which
repeats so that holding it clears a wrongly typed amount.
"""

from __future__ import annotations

import abc
import enum


class Key(str, enum.Enum):
    """A key the cashier can press. Digits and the dot have their character as value. A str enum,
    so a key equals and hashes as its value (a table keyed by "1" finds Key.DIGIT_1); the machine
    itself compares keys as members and reads :attr:`character`, never strings.

    The four function keys have no fixed meaning here; the app binds them (the stations use F1 menu,
    F2 reprint, F3 shift, F4 void). On a 17-key USB keypad they are ``/ * - +``.
    """

    DIGIT_0 = "0"
    DIGIT_1 = "1"
    DIGIT_2 = "2"
    DIGIT_3 = "3"
    DIGIT_4 = "4"
    DIGIT_5 = "5"
    DIGIT_6 = "6"
    DIGIT_7 = "7"
    DIGIT_8 = "8"
    DIGIT_9 = "9"
    DOT = "."
    ENTER = "ENTER"
    CANCEL = "CANCEL"
    BACK = "BACK"
    F1 = "F1"
    F2 = "F2"
    F3 = "F3"
    F4 = "F4"
    # A full keyboard's letters and space (the front desk types a member's name in pinyin).
    (A, B, C, D, E, F, G, H, I, J, K, L, M, N, O, P, Q, R, S, T, U, V, W, X, Y, Z) = "abcdefghijklmnopqrstuvwxyz"  # noqa: E741
    SPACE = " "

    @property
    def is_digit(self) -> bool:
        return self.value.isdigit()

    @property
    def character(self) -> str | None:
        """What the key types ("0".."9", ".", a letter or a space), or None for a command key."""
        return self.value if len(self.value) == 1 else None

    @classmethod
    def for_character(cls, character: str) -> Key:
        """The key that types ``character`` (a digit, ".", a lower-case letter or a space)."""
        for key in cls:
            if key.character is not None and key.character == character:
                return key
        raise ValueError(f"no key types {character!r}: only digits, '.', a-z and space")


# Keys that repeat while held. Digits must not: a finger resting on "0" must not turn 30.00 into
# 3000.00 on a payment terminal. Backspace repeating is what every cashier expects.
REPEATING_KEYS = frozenset({Key.BACK})


class Keypad(abc.ABC):
    """A source of key presses."""

    @abc.abstractmethod
    def read_key(self, timeout_s: float) -> Key | None:
        """The next key pressed, waiting at most ``timeout_s`` seconds (0 = only look), else None.

        Keys pressed since the last call are returned one per call, oldest first. Raises
        ``terminal.errors.KeypadError`` if the keypad is gone (unplugged).
        """

    def close(self) -> None:  # noqa: B027 - optional hook, not every backend holds a device
        """Release the device. The default does nothing."""

    def __enter__(self) -> Keypad:
        return self

    def __exit__(self, *exception_info: object) -> None:
        self.close()
