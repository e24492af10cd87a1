"""Refusals of terminal messages. A refusal changes nothing; the terminal may correct and retry."""

from __future__ import annotations

from processing.authorization.codes import ResponseCode
from processing.errors import ProcessingError


class TransactionIdReused(ProcessingError):
    status_code = 409
    code = "transaction_id_reused"
    response_code = ResponseCode.DUPLICATE_TRANSMISSION
    default_detail = "This terminal transaction id was already used for a different request."


class AuthorizationNotFound(ProcessingError):
    status_code = 404
    code = "authorization_not_found"
    response_code = ResponseCode.UNABLE_TO_LOCATE
    default_detail = "No authorization with this terminal transaction id."


class AuthorizationDeclined(ProcessingError):
    status_code = 409
    code = "authorization_declined"
    response_code = ResponseCode.INVALID_TRANSACTION
    default_detail = "The authorization was declined: there is no hold to complete."


class AuthorizationReversed(ProcessingError):
    status_code = 409
    code = "authorization_reversed"
    response_code = ResponseCode.INVALID_TRANSACTION
    default_detail = "The hold was reversed: there is nothing to complete."


class HoldExpired(ProcessingError):
    status_code = 409
    code = "hold_expired"
    response_code = ResponseCode.INVALID_TRANSACTION
    default_detail = "The hold has expired and its money was released."


class AlreadyCompleted(ProcessingError):
    status_code = 409
    code = "already_completed"
    response_code = ResponseCode.DUPLICATE_TRANSMISSION
    default_detail = "This authorization was already completed with a different amount."


class AuthorizationCompleted(ProcessingError):
    status_code = 409
    code = "authorization_completed"
    response_code = ResponseCode.INVALID_TRANSACTION
    default_detail = "The authorization is completed; a completed sale cannot be reversed."


class ProductMismatch(ProcessingError):
    status_code = 409
    code = "product_mismatch"
    response_code = ResponseCode.INVALID_TRANSACTION


class CompletionExceedsHold(ProcessingError):
    status_code = 409
    code = "completion_exceeds_hold"
    response_code = ResponseCode.INVALID_AMOUNT


class AmountDoesNotMatchVolume(ProcessingError):
    status_code = 422
    code = "amount_does_not_match_volume"
    response_code = ResponseCode.INVALID_AMOUNT
