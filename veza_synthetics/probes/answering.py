"""Whether each endpoint of the run still answers. After a few exchanges in a row went unanswered (timed out,
or a connection that never opened), a hung or dead endpoint costs the run no more timeouts: every caller is
told at once ("not sent: ..."), and one exchange tries again every `retry_s`; the first answer ends it. The
transport (transport.py) keeps one Endpoint per host:port of its profile; other addresses are not guarded."""
from __future__ import annotations

import threading
import time

UNANSWERED_IN_A_ROW = 3


class Endpoint:
    def __init__(self, address: str, retry_s: float):
        self.address, self.retry_s = address, retry_s
        self._lock = threading.Lock()
        self._unanswered: list[str] = []  # why each of the last exchanges got no answer, in a row
        self._retry_at = 0.0
        self._last_answer = float("-inf")
        self.not_sent = 0

    def not_answering(self) -> str | None:
        """Why an exchange should not be sent now, or None to send it (the caller may be the one retrying)."""
        with self._lock:
            if len(self._unanswered) < UNANSWERED_IN_A_ROW:
                return None
            now = time.monotonic()
            if now >= self._retry_at:
                self._retry_at = now + self.retry_s
                return None
            self.not_sent += 1
            return (f"not sent: the last {len(self._unanswered)} exchanges with {self.address} got no answer "
                    f"({self._unanswered[-1]}); one tries again every {self.retry_s:g} s")

    def silent(self) -> bool:
        """Not answering, and not yet time to try again: a caller need not wait for a turn to be told."""
        with self._lock:
            return len(self._unanswered) >= UNANSWERED_IN_A_ROW and time.monotonic() < self._retry_at

    def answered(self) -> None:
        with self._lock:
            self._unanswered.clear()
            self._last_answer = time.monotonic()

    def unanswered(self, why: str, sent_at: float) -> None:
        """An exchange begun at `sent_at` (time.monotonic()) got no answer. It counts only if nothing else was
        answered meanwhile: a platform whose other requests answer during a hang is answering (one locked
        table, one slow route), whatever order the exchanges end in."""
        with self._lock:
            if self._last_answer >= sent_at:
                return
            self._unanswered.append(why)
            if len(self._unanswered) == UNANSWERED_IN_A_ROW:
                self._retry_at = time.monotonic() + self.retry_s
