"""The portal's errors: each with a code the page shows beside its message."""

from backoffice.errors import ConsoleError


class PortalError(ConsoleError):
    """Something a member asked for that the portal will not do."""

    code = "PORTAL"


class CodeRateLimited(PortalError):
    """Too many codes asked for this phone: wait a minute (at most five an hour)."""

    code = "CODE_RATE_LIMITED"


class CodeRefused(PortalError):
    """The code is wrong, expired, or was tried too often: ask for a new one."""

    code = "CODE_REFUSED"


class BadPhone(PortalError):
    """Not a mainland mobile number (11 digits starting with 1)."""

    code = "BAD_PHONE"
