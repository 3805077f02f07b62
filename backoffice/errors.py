"""Errors of the console: each a code the login page, the command line and the log all show."""

from protocol.errors import FieldposError


class ConsoleError(FieldposError):
    """The console could not do what was asked."""

    code = "CONSOLE"


class LoginRefused(ConsoleError):
    """Wrong user name or password (which one is never said)."""

    code = "BAD_LOGIN"


class AccountLocked(LoginRefused):
    """Too many wrong passwords: the account is locked for a while."""

    code = "ACCOUNT_LOCKED"


class TooManyAttempts(LoginRefused):
    """Too many login attempts from this address: wait a few minutes."""

    code = "TOO_MANY_ATTEMPTS"


class UserExists(ConsoleError, ValueError):
    """A console user of that name exists already."""

    code = "ALREADY_EXISTS"


class NoSuchUser(ConsoleError, LookupError):
    """No console user of that name."""

    code = "NOT_FOUND"


class BadUser(ConsoleError, ValueError):
    """A user name, role, station list or password the console does not accept."""

    code = "BAD_USER"
