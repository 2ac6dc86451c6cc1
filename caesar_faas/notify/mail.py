"""Mail through CAESAR_SMTP_URL: smtp://[user:pass@]host[:port][?starttls=1] or
smtps://[user:pass@]host[:port] (TLS from the first byte). The URL holds a password: it comes
from a secret, and neither it nor the server's answers are logged."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from urllib.parse import parse_qs, unquote, urlsplit

from .webhook import Sent

TIMEOUT = 10.0


def send(smtp_url: str, sender: str, to: str, subject: str, text: str) -> Sent:
    parts = urlsplit(smtp_url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        return Sent(False, False, "CAESAR_SMTP_URL is not an smtp:// or smtps:// URL")
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, to, subject
    message.set_content(text)
    secure = parts.scheme == "smtps"
    port = parts.port or (465 if secure else 25)
    starttls = (parse_qs(parts.query).get("starttls") or ["0"])[0].lower() in ("1", "true", "yes")
    try:
        client = (smtplib.SMTP_SSL(parts.hostname, port, timeout=TIMEOUT, context=ssl.create_default_context())
                  if secure else smtplib.SMTP(parts.hostname, port, timeout=TIMEOUT))
        with client:
            if starttls:
                client.starttls(context=ssl.create_default_context())
            if parts.username:
                client.login(unquote(parts.username), unquote(parts.password or ""))
            refused = client.send_message(message)
    except smtplib.SMTPRecipientsRefused:
        return Sent(False, False, "the mail server refused the recipient")
    except smtplib.SMTPAuthenticationError:
        return Sent(False, True, "the mail server refused the credentials")
    except (smtplib.SMTPException, OSError) as exc:
        return Sent(False, True, f"mail not sent ({type(exc).__name__})")
    if refused:
        return Sent(False, False, "the mail server refused the recipient")
    return Sent(True, False, "accepted by the mail server")
