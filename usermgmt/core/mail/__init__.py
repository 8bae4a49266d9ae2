"""Email delivery: rendering the outbox's templates, transports, and the delivery service.

Services record messages with :func:`usermgmt.core.services.outbox.enqueue` in the
same transaction as the token they carry; :class:`MailService` delivers them.
"""

from usermgmt.core.mail.delivery import (
    BackgroundDeliverer,
    DeliveryReport,
    MailList,
    MailOut,
    MailService,
)

__all__ = ["BackgroundDeliverer", "DeliveryReport", "MailList", "MailOut", "MailService"]
