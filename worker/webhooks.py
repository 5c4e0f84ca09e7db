"""Violation webhooks (SPEC 11): an analysis with a failed rule is POSTed, signed, to
``VIOLATION_WEBHOOK_URL``, through its own outbox, so it is delivered at least once and never holds
up a job.

The job only commits the webhook to the outbox (``DATA_DIR/outbox/webhooks.sqlite3``) before it
returns; a background thread delivers it, retrying with exponential backoff while the receiver is
down or refuses it. A receiver that answers with an error ``WEBHOOK_MAX_ATTEMPTS`` times in a row
gets the entry set aside (logged, in ``health``). Each POST carries the analysis id as
``X-Mugpos-Delivery`` and ``Idempotency-Key``: a worker killed between the receiver's answer and
the outbox's note of it sends the same webhook again, and the receiver drops the repeat by that key.

The URL is checked as ``image_url`` is (http/https only; private, loopback and metadata addresses
refused unless ``ALLOW_PRIVATE_URLS``), at every delivery, against the address it connects to.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
from dataclasses import dataclass
from typing import Any, Literal

from storage.outbox import Outbox
from worker.errors import JobError
from worker.fetch import UrlFetcher
from worker.schemas import AnalysisResult, MoveOut, Output
from worker.settings import Settings

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Mugpos-Signature"
DELIVERY_HEADER = "X-Mugpos-Delivery"
DATABASE = "webhooks.sqlite3"
WEBHOOK_MAX_ATTEMPTS = 12  # with the backoff below, about 40 minutes of refusals
FIRST_RETRY_S = 1.0
MAX_RETRY_S = 600.0
MAX_REPLY_BYTES = 64 * 1024
SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}


def sign(body: bytes, secret: str) -> str:
    """The ``X-Mugpos-Signature`` value: ``sha256=`` and the hex HMAC-SHA256 of the exact body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(body: bytes, signature: str, secret: str) -> bool:
    """What a receiver does: recompute the signature of the raw body and compare in constant time."""
    return hmac.compare_digest(sign(body, secret), signature)


class FailedRule(Output):
    rule_id: str
    type: str
    text: str | None
    severity: Literal["info", "warning", "critical"]
    mug_id: str | None
    message: str
    adjustment: MoveOut | None


class ViolationWebhook(Output):
    """The JSON body of a violation webhook."""

    event: Literal["analysis.violation"] = "analysis.violation"
    analysis_id: str
    created_at: str
    metadata: dict[str, Any]
    safety_score: float
    summary: str
    failed_rules: list[FailedRule]
    recommendations: list[str]
    image_key: str | None
    annotated_key: str | None
    annotated_url: str | None


def violation_body(
    result: AnalysisResult, created_at: str, min_severity: str = "info"
) -> bytes | None:
    """The webhook body for an analysis, or None when no rule of ``min_severity`` or worse failed."""
    failed = [
        rule
        for rule in result.rules
        if rule.status == "fail" and SEVERITY_RANK[rule.severity] >= SEVERITY_RANK[min_severity]
    ]
    if not failed:
        return None
    webhook = ViolationWebhook(
        analysis_id=result.analysis_id,
        created_at=created_at,
        metadata=result.metadata,
        safety_score=result.positioning.safety_score,
        summary=result.feedback.summary,
        failed_rules=[
            FailedRule(**rule.model_dump(include=set(FailedRule.model_fields))) for rule in failed
        ],
        recommendations=result.feedback.recommendations,
        image_key=result.artifacts.original_key,
        annotated_key=result.artifacts.annotated_key,
        annotated_url=result.artifacts.annotated_url,
    )
    return webhook.model_dump_json(by_alias=True).encode()


class WebhookRefused(Exception):
    """The receiver did not take the webhook (an HTTP error, or it could not be reached)."""


@dataclass(frozen=True)
class WebhookLimits:
    """The bounds of one POST (worker.fetch.FetchLimits)."""

    url_timeout_s: float
    allow_private_urls: bool
    max_bytes: int = MAX_REPLY_BYTES
    max_redirects: int = 0


class WebhookSender:
    """POSTs one signed body to the configured URL (the outbox's webhook sink)."""

    def __init__(self, url: str, secret: str, fetcher: UrlFetcher) -> None:
        self.url = url
        self._secret = secret
        self._fetcher = fetcher
        self._answered = True  # whether the receiver answered the last POST at all

    def deliver(self, key: str, body: bytes) -> None:
        headers = {
            SIGNATURE_HEADER: sign(body, self._secret),
            DELIVERY_HEADER: key,
            "Idempotency-Key": key,
        }
        try:
            status = self._fetcher.post(self.url, body, headers, field="VIOLATION_WEBHOOK_URL")
        except JobError as error:
            # could not connect or timed out: down (waits as long as it takes); a refused
            # address or URL: a refusal, set aside after the attempts
            self._answered = error.code != "fetch_failed"
            raise WebhookRefused(error.message) from None
        self._answered = True
        if not 200 <= status < 300:
            raise WebhookRefused(f"HTTP {status}")

    def ping(self) -> bool:
        return self._answered


class WebhookDelivery:
    """The webhook outbox and the thread that empties it, retrying with backoff."""

    def __init__(
        self,
        outbox: Outbox,
        sender: WebhookSender,
        min_severity: str = "info",
        first_retry_s: float = FIRST_RETRY_S,
        max_retry_s: float = MAX_RETRY_S,
    ) -> None:
        self.outbox = outbox
        self.sender = sender
        self.min_severity = min_severity
        self.first_retry_s = first_retry_s
        self.max_retry_s = max_retry_s
        self.delivered = 0
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._run, name="webhooks", daemon=True)

    @classmethod
    def from_settings(cls, settings: Settings) -> WebhookDelivery | None:
        """The delivery for ``VIOLATION_WEBHOOK_URL``, started; None when it is not set."""
        if settings.violation_webhook_url is None or settings.webhook_secret is None:
            return None
        limits = WebhookLimits(settings.webhook_timeout_s, settings.allow_private_urls)
        sender = WebhookSender(
            settings.violation_webhook_url,
            settings.webhook_secret.get_secret_value(),
            UrlFetcher(limits),
        )
        outbox = Outbox(
            settings.data_dir.absolute() / "outbox", DATABASE, max_attempts=WEBHOOK_MAX_ATTEMPTS
        )
        delivery = cls(outbox, sender, settings.webhook_min_severity, FIRST_RETRY_S, MAX_RETRY_S)
        delivery.start()
        return delivery

    def announce(self, result: AnalysisResult, created_at: str) -> bool:
        """Queue the webhook of an analysis with a failed rule (committed before this returns);
        whether there was one to send."""
        body = violation_body(result, created_at, self.min_severity)
        if body is None:
            return False
        self.outbox.add_webhook(result.analysis_id, body)
        self._wake.set()
        return True

    def start(self) -> None:
        self._thread.start()

    def close(self, timeout_s: float = 5.0) -> None:
        self._closing.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def health(self) -> dict[str, Any]:
        return {
            "pending": self.outbox.pending(),
            "delivered": self.delivered,
            "set_aside": len(self.outbox.dead_entries()),
        }

    def _run(self) -> None:
        failures = 0
        while not self._closing.is_set():
            self._wake.clear()
            try:
                written, failed = self.outbox.replay(None, None, webhooks=self.sender)
            except Exception:  # the thread must outlive any surprise; the entry stays queued
                log.exception("webhooks: delivery failed unexpectedly")
                written, failed = 0, "webhooks"
            self.delivered += written
            if failed is not None:
                failures += 1
                delay = min(self.max_retry_s, self.first_retry_s * 2 ** (failures - 1))
                log.warning("webhooks: delivery failed; retrying in %.0f s", delay)
                self._closing.wait(delay)  # new webhooks wait their turn: no retry storm
                continue
            failures = 0
            if self.outbox.pending() == 0:
                self._wake.wait()
