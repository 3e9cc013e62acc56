"""EWS response codes the sandbox answers with, and the exception that carries one.

Exchange reports an error in two shapes: inside a ``*ResponseMessage`` (per item: ErrorItemNotFound,
ErrorAccessDenied, ...), or as a SOAP fault when the whole request is refused (ErrorServerBusy,
ErrorImpersonateUserDenied, ErrorSchemaValidation, ...). exchangelib reads both and raises the exception
class of the same name; only the fault carries ``BackOffMilliseconds`` to ``ErrorServerBusy.back_off``.
"""

from __future__ import annotations

NO_ERROR = "NoError"
ACCESS_DENIED = "ErrorAccessDenied"
FOLDER_NOT_FOUND = "ErrorFolderNotFound"
IMPERSONATE_USER_DENIED = "ErrorImpersonateUserDenied"
IMPERSONATION_HEADER = "ErrorInvalidExchangeImpersonationHeaderData"
INVALID_ID = "ErrorInvalidIdMalformed"
INVALID_PROPERTY = "ErrorInvalidPropertyRequest"
INVALID_REQUEST = "ErrorInvalidRequest"
INVALID_SERVER_VERSION = "ErrorInvalidServerVersion"
INVALID_VALUE = "ErrorInvalidValueForProperty"
IRRESOLVABLE_CONFLICT = "ErrorIrresolvableConflict"
ITEM_NOT_FOUND = "ErrorItemNotFound"
END_BEFORE_START = "ErrorCalendarEndDateIsEarlierThanStartDate"
NON_EXISTENT_MAILBOX = "ErrorNonExistentMailbox"
SCHEMA_VALIDATION = "ErrorSchemaValidation"
SERVER_BUSY = "ErrorServerBusy"
INVALID_OPERATION = "ErrorInvalidOperation"
FOLDER_EXISTS = "ErrorFolderExists"


class EwsError(Exception):
    """An error with an EWS response code. ``fault`` marks whole-request errors (sent as a SOAP fault)."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        fault: bool = False,
        values: dict[str, str] | None = None,
        violation: tuple[int, int, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.fault = fault
        self.values = values or {}
        self.violation = violation


def request_fault(code: str, message: str) -> EwsError:
    return EwsError(code, message, fault=True)
