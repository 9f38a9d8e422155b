"""Why a handler failed, decided once for the whole desk: the infrastructure, or the message.

- **The infrastructure** (`is_infrastructure`): the database unreachable or restarting, a
  connection lost, a connect, pool or statement timeout, a serialization failure or deadlock, a
  server out of resources, SMTP unreachable (raised as `DependencyDown`). The message is fine:
  the consumer keeps it in hand and retries with backoff until the dependency is back, without
  spending the queue's delivery limit (shared/messaging.py).
- **The message**: anything else (a bug, a constraint a message can never satisfy, a value the
  code cannot handle). It is retried a few times through the broker, which counts each try, and
  then goes to its queue's DLQ with the reason, where `payhara dlq replay` can bring it back.

Deliberately narrow: an error we do not recognise is about the message, so an unknown failure
ends in the DLQ (visible, re-drivable) rather than pausing a queue for ever.
"""
import asyncio

import sqlalchemy.exc

# SQLSTATE classes and codes that say "not now" rather than "never"
TRANSIENT_SQLSTATE_CLASSES = ("08", "40", "53", "57", "58")  # connection, rollback, resources,
TRANSIENT_SQLSTATES = ("55P03",)  # lock not available            operator intervention, system


class DependencyDown(Exception):
    """Raised by an adapter when what it talks to (an SMTP server, say) cannot be reached now."""


def is_infrastructure(error: BaseException) -> bool:
    """True when `error`, or an error it was raised from, says a dependency is away."""
    for cause in _chain(error):
        if isinstance(cause, (DependencyDown, OSError, TimeoutError, asyncio.TimeoutError,
                              sqlalchemy.exc.TimeoutError, sqlalchemy.exc.DisconnectionError)):
            return True
        if isinstance(cause, sqlalchemy.exc.DBAPIError) and cause.connection_invalidated:
            return True
        state = getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)
        if isinstance(state, str) and (state[:2] in TRANSIENT_SQLSTATE_CLASSES or state in TRANSIENT_SQLSTATES):
            return True
        if type(cause).__name__ == "InterfaceError" and "connection" in str(cause).lower():
            return True  # asyncpg: "connection is closed", "cannot ... connection was closed"
    return False


def _chain(error: BaseException):
    """The error, what it wraps (SQLAlchemy's .orig) and what it was raised `from`, each once.
    Not __context__: an error raised while handling another is not caused by it."""
    seen: set[int] = set()
    pending = [error]
    while pending:
        cause = pending.pop()
        if cause is None or id(cause) in seen:
            continue
        seen.add(id(cause))
        yield cause
        pending.extend([getattr(cause, "orig", None), cause.__cause__])
