"""Notifications through apprise: who is told what (``dispatch``), the messages
(``message``), their delivery with retries (``deliver``) and apprise itself (``transport``).

The one call the rest of Slipway makes is :meth:`Notifier.emit`::

    notifier.emit(
        NotificationEvent.APP_DOWN,
        application_id=app_id,
        details=EventDetails(summary="task exited with code 137 (OOM-killed)",
                             last_lines=lines),
    )
"""

from app.notify.dispatch import EventDetails, Notifier
from app.types import NotificationEvent

__all__ = ["EventDetails", "NotificationEvent", "Notifier"]
