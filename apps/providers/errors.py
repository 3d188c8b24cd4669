"""Provider error codes as data: what each code means, in words an agent can read, and whether
trying again can help.

Meta publishes no retryable flag except ``is_transient`` in the error envelope; the
``transient`` column here is Parley's recommendation from Meta's "possible solutions" text, and
an envelope's ``is_transient`` overrides it. Gupshup passes Meta's codes through, so Gupshup
lookups fall back to the Meta table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Category = Literal["", "auth", "config", "rate_limit", "billing", "policy", "template", "recipient", "request"]

META = "meta_cloud"
GUPSHUP = "gupshup"
GUPSHUP_PARTNER = "gupshup_partner"


@dataclass(frozen=True)
class ErrorInfo:
    title: str
    explanation: str
    transient: bool
    retry_after: float | None = None
    pair_rate_limited: bool = False
    category: Category = ""


@dataclass(frozen=True)
class ErrorExplanation:
    provider: str
    code: int | None
    title: str
    explanation: str
    transient: bool
    retry_after: float | None = None
    pair_rate_limited: bool = False
    category: Category = ""
    known: bool = True


def _e(title: str, explanation: str, transient: bool = False, *, retry_after: float | None = None,
       pair: bool = False, category: Category = "") -> ErrorInfo:
    return ErrorInfo(title, explanation, transient, retry_after, pair, category)


_TEMPLATE_PARAMS = ("The template's parameters do not match the approved template: check the number, "
                    "order, names and types of the variables you mapped.")

META_ERRORS: dict[int, ErrorInfo] = {
    # Authorisation
    0: _e("Authentication failed", "Meta could not authenticate the access token (expired, revoked or "
          "invalidated). Generate a new token and update the number's credentials.", category="auth"),
    190: _e("Access token has expired", "The access token for this number has expired. Generate a new "
            "(system-user) token and update the number's credentials.", category="auth"),
    3: _e("API method not allowed", "The app is missing the capability or permission for this API call. "
          "Check the app's permissions in Meta Business Manager.", category="auth"),
    10: _e("Permission denied", "The token lacks permission for this number or WABA (or the permission was "
           "removed). Grant whatsapp_business_messaging to the token's system user.", category="auth"),
    # Rate limits
    4: _e("Too many API calls", "The app hit Meta's API call rate limit. Parley slows down and retries "
          "automatically.", True, retry_after=60.0, category="rate_limit"),
    80007: _e("WhatsApp Business Account rate limit", "The WhatsApp Business Account hit its API rate "
              "limit. Parley slows down and retries automatically.", True, retry_after=60.0,
              category="rate_limit"),
    130429: _e("Throughput limit reached", "This number sent more messages per second than Meta allows "
               "(80/s by default). Parley backs off and retries automatically.", True, retry_after=1.0,
               category="rate_limit"),
    131048: _e("Spam rate limit hit", "Meta is restricting this number because too many recent messages "
               "were blocked or reported. Pause campaigns and check the number's quality rating before "
               "sending more.", category="policy"),
    131056: _e("Too many messages to this customer", "Too many messages were sent to the same customer in "
               "a short time (about one every 6 seconds). Messages to this customer are retried later; "
               "other customers are not affected.", True, pair=True, category="rate_limit"),
    133016: _e("Registration rate limit", "Too many register/deregister attempts for this number. Wait "
               "before trying again.", True, retry_after=3600.0, category="rate_limit"),
    # Integrity
    368: _e("Temporarily blocked for policy violations", "Meta blocked this number for violating its "
            "messaging policies. Sending is halted; review the account's policy notices.", category="policy"),
    131031: _e("Business account locked", "Meta locked this WhatsApp Business Account (policy or "
               "verification problem). Sending is halted; see Business Manager.", category="policy"),
    # Generic and request errors
    1: _e("Unknown API error", "Meta reported an unknown error (an invalid request or a temporary server "
          "problem). Parley retries a limited number of times.", True),
    2: _e("Meta service temporarily unavailable", "WhatsApp's API is down or overloaded. Parley retries "
          "automatically.", True),
    33: _e("Phone number deleted", "This business phone number no longer exists at Meta. Reconnect the "
           "number.", category="config"),
    100: _e("Invalid parameter", "The request contains an invalid or unsupported parameter (or names an id "
            "that does not exist). Check the message fields.", category="request"),
    131000: _e("Something went wrong", "Meta failed to send the message because of an unknown error. "
               "Parley retries a limited number of times.", True),
    131005: _e("Access denied", "The token does not have permission to send from this number.",
               category="auth"),
    131008: _e("Required parameter missing", "The request is missing a field Meta requires. Check the "
               "message fields.", category="request"),
    131009: _e("Parameter value is not valid", "A field has a value Meta does not accept (for example a "
               "malformed phone number, URL or media id). Check the message fields.", category="request"),
    131016: _e("Service unavailable", "A WhatsApp service is temporarily unavailable. Parley retries "
               "automatically.", True),
    131021: _e("Recipient cannot be sender", "The message was addressed to the business number itself.",
               category="recipient"),
    131026: _e("Message undeliverable", "WhatsApp could not deliver to this number: it may not be on "
               "WhatsApp, may not have accepted the latest terms, or uses an outdated app. Do not keep "
               "retrying.", category="recipient"),
    131042: _e("Payment problem", "There is a problem with the payment method of this business account. "
               "Fix billing in Business Manager.", category="billing"),
    131045: _e("Number not registered", "The business number's certificate or registration is incorrect. "
               "Register the number again.", category="config"),
    131047: _e("Customer service window closed", "More than 24 hours have passed since the customer last "
               "wrote, so only an approved template can be sent now.", category="policy"),
    131051: _e("Unsupported message type", "WhatsApp does not support this message type.",
               category="request"),
    131052: _e("Media download error", "WhatsApp could not download the media the customer sent. Ask the "
               "customer to send it again."),
    131053: _e("Media upload error", "WhatsApp could not use the media: the file type, size or URL is not "
               "accepted, or the link could not be fetched. Fix the media and send again.",
               category="request"),
    131057: _e("Account in maintenance mode", "The business account is in maintenance (for example a "
               "throughput upgrade, usually under a minute). Parley retries shortly.", True,
               retry_after=60.0),
    132000: _e("Template parameter count mismatch", _TEMPLATE_PARAMS, category="template"),
    132001: _e("Template does not exist", "No approved template with this name exists in this language. "
               "Check the name and language, and that the template is approved.", category="template"),
    132005: _e("Template text too long", "The template's text with the variables filled in is too long. "
               "Shorten the variable values.", category="template"),
    132007: _e("Template format policy violated", "The variable values break WhatsApp's formatting "
               "policy (for example new lines, tabs or more than four spaces in a row).",
               category="template"),
    132012: _e("Template parameter format mismatch", _TEMPLATE_PARAMS, category="template"),
    132015: _e("Template paused", "The template is paused because of low quality. Edit it or use another "
               "template.", category="template"),
    132016: _e("Template disabled", "The template was disabled after repeated quality problems. Create a "
               "new template.", category="template"),
    132018: _e("Template parameter problem", "Meta rejected the template's parameters. " + _TEMPLATE_PARAMS,
               category="template"),
    132068: _e("Flow is blocked", "The flow in this message is blocked. Fix the flow in WhatsApp Manager.",
               category="request"),
    132069: _e("Flow is throttled", "Too many messages used this flow recently; it is throttled.",
               category="request"),
    133000: _e("Incomplete deregistration", "A previous deregistration of this number did not finish. "
               "Deregister it again before registering.", category="config"),
    133004: _e("Server temporarily unavailable", "WhatsApp's server is temporarily unavailable. Parley "
               "retries automatically.", True),
    135000: _e("Generic user error", "Meta rejected the request for an unspecified reason (often invalid "
               "parameters).", category="request"),
    130472: _e("Customer is part of an experiment", "Meta did not deliver this marketing message because "
               "the customer's number is part of a Meta experiment.", category="recipient"),
    # Newer codes
    130497: _e("Country restricted", "This business cannot message users in this country.",
               category="policy"),
    131020: _e("Group error", "The group message could not be sent.", category="request"),
    131030: _e("Recipient not in allowed list", "Test numbers can only message phone numbers added to the "
               "allowed list. Add the recipient in App Dashboard or use a production number.",
               category="config"),
    131037: _e("Display name not approved", "The number's display name has not been approved yet, so it "
               "cannot send messages.", category="config"),
    131041: _e("Group error", "The group message could not be sent.", category="request"),
    131049: _e("Not delivered to keep engagement healthy", "Meta held this marketing message back because "
               "the customer received too many marketing messages. Wait at least 24 hours before trying "
               "this customer again.", category="recipient"),
    131050: _e("Customer stopped marketing messages", "The customer chose to stop receiving marketing "
               "messages from this business.", category="recipient"),
    131059: _e("Group error", "The group message could not be sent.", category="request"),
    131062: _e("Recipient id not supported", "Business-scoped user ids cannot be used as a recipient for "
               "this message.", category="request"),
    131063: _e("Marketing templates disabled", "Marketing templates are disabled for this number on the "
               "Cloud API.", category="config"),
    131064: _e("Messaging limit reached", "The business reached its messaging limit of unique customers in "
               "24 hours. Wait for the limit to reset or raise the tier.", category="rate_limit"),
    137000: _e("Identity key mismatch", "The customer's identity changed (new phone or reinstall), so the "
               "message was not sent. Confirm the customer's identity, then send again.",
               category="recipient"),
    # Legacy On-Premises code some providers still surface
    470: _e("Customer service window closed", "More than 24 hours have passed since the customer last "
            "wrote, so only an approved template can be sent now.", category="policy"),
}

_META_RANGES: list[tuple[range, ErrorInfo]] = [
    (range(200, 300), _e("API permission error", "The token lacks a permission this call needs. Check the "
                         "system user's permissions.", category="auth")),
    (range(133005, 133016), _e("Two-step verification or registration error", "Registering this number "
                               "failed (PIN or verification problem).", category="config")),
]

GUPSHUP_ERRORS: dict[int, ErrorInfo] = {
    500: _e("Gupshup internal error", "Gupshup had an internal error. Parley retries automatically.", True),
    1001: _e("Sandbox bot mismatch", "The customer last talked to a different Gupshup sandbox app. Ask "
             "them to message this app's sandbox number again.", category="config"),
    1002: _e("Number not on WhatsApp", "This phone number does not exist on WhatsApp.", category="recipient"),
    1003: _e("Wallet balance low", "The Gupshup wallet does not have enough balance. Recharge it.",
             category="billing"),
    1004: _e("Session closed, templates disabled", "The customer has not written in 24 hours and template "
             "messaging is disabled for this app.", category="policy"),
    1005: _e("Customer service window closed", "The customer has not written in 24 hours, so only an "
             "approved template can be sent.", category="policy"),
    1006: _e("Session closed, no template match", "The customer has not written in 24 hours and the text "
             "did not match an approved template.", category="template"),
    1007: _e("Session closed, not opted in", "The customer has not written in 24 hours and has not opted in "
             "to template messages.", category="recipient"),
    1008: _e("Not opted in and inactive", "The customer has not opted in and has not written recently.",
             category="recipient"),
    1010: _e("Invalid media URL", "Gupshup could not fetch the media URL. Use a public http(s) link.",
             category="request"),
    1011: _e("Invalid media size", "The media file is too large (or empty) for WhatsApp.",
             category="request"),
    1012: _e("Customer opted out", "The customer opted out of messages from this business.",
             category="recipient"),
    4001: _e("Gupshup rate limit", "Gupshup is rate limiting this app. Parley slows down and retries.",
             True, retry_after=60.0, category="rate_limit"),
    4002: _e("Invalid response from WhatsApp", "Gupshup received an invalid answer from WhatsApp. Parley "
             "retries a limited number of times.", True),
    4003: _e("No template match", "The template text did not match an approved template.",
             category="template"),
    4004: _e("Cloud-API-only feature", "This feature is available only for apps on Meta's Cloud API.",
             category="config"),
    4005: _e("Template paused", "The template is paused because of low quality.", category="template"),
}

# Gupshup classic answers errors as {"status": "error", "message": "<text>"} without a code.
GUPSHUP_MESSAGE_ERRORS: dict[str, ErrorInfo] = {
    "invalid destination": _e("Invalid destination", "The customer's phone number is not valid for "
                              "Gupshup. Use the full number with country code, digits only.",
                              category="recipient"),
    "invalid app details": _e("Invalid app details", "Gupshup does not know this app name or source "
                              "number. Check the number's Gupshup app name and display number.",
                              category="config"),
    "authentication failed": _e("Authentication failed", "Gupshup rejected the API key or app token. "
                                "Update the number's credentials.", category="auth"),
    "too many requests": _e("Gupshup rate limit", "Gupshup is rate limiting this app. Parley slows down "
                            "and retries.", True, category="rate_limit"),
    "portal user not found with this apikey": _e("Authentication failed", "Gupshup does not recognise this "
                                                 "API key. Update the number's credentials.",
                                                 category="auth"),
    "template does not exist": _e("Template does not exist", "Gupshup has no template with this id for "
                                  "the app. Sync templates and try again.", category="template"),
    "wallet balance low": GUPSHUP_ERRORS[1003],
}


def _unknown(provider: str, code: int | None) -> ErrorExplanation:
    if code is None:
        return ErrorExplanation(provider, None, "Provider error", "The provider refused the request "
                                "without an error code.", False, known=False)
    return ErrorExplanation(
        provider, code, f"Error {code}",
        f"The provider returned error code {code}, which Parley does not recognise. See the provider's "
        "error-code reference; the raw answer is kept with the attempt.",
        False, known=False,
    )


def _meta_lookup(code: int) -> ErrorInfo | None:
    info = META_ERRORS.get(code)
    if info is not None:
        return info
    for codes, ranged in _META_RANGES:
        if code in codes:
            return ranged
    return None


def _with(provider: str, code: int | None, info: ErrorInfo) -> ErrorExplanation:
    return ErrorExplanation(provider, code, info.title, info.explanation, info.transient, info.retry_after,
                            info.pair_rate_limited, info.category, True)


def explain(provider: str, code: int | None) -> ErrorExplanation:
    """What ``code`` means for ``provider`` ("meta_cloud", "gupshup", "gupshup_partner").

    Unknown codes get a readable fallback marked ``known=False`` and ``transient=False``;
    callers decide on transience from the HTTP status in that case.
    """
    if code is None:
        return _unknown(provider, None)
    if provider in (GUPSHUP, GUPSHUP_PARTNER):
        info = GUPSHUP_ERRORS.get(code) or _meta_lookup(code)
    else:
        info = _meta_lookup(code)
    if info is None:
        return _unknown(provider, code)
    return _with(provider, code, info)


def explain_gupshup_message(provider: str, message: str) -> ErrorExplanation:
    """Explain a Gupshup ``{"status": "error", "message": …}`` answer, which has no code."""
    info = GUPSHUP_MESSAGE_ERRORS.get(message.strip().rstrip(".").lower())
    if info is None:
        return ErrorExplanation(provider, None, message or "Gupshup error",
                                "Gupshup refused the request for a reason Parley does not recognise.", False,
                                known=False)
    return _with(provider, None, info)
