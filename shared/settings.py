"""One settings class for the whole desk, read from PAYHARA_* environment variables."""
from datetime import date
from functools import lru_cache

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SECRET = "dev-only-not-a-secret"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # date.weekday() order


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PAYHARA_", env_file=".env", extra="ignore")

    env: str = "dev"  # dev | test | production
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/payhara"

    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8025
    smtp_timeout_s: float = 10.0
    # per batch of e-mails, used side by side. Each mail waits for its hand-over to be committed
    # before its send (the crash window), so more lanes keep acknowledgements flowing
    # (bench/pipeline.py at 100/s offered: 4 lanes fell behind at 94/s; on a slower day 8 lanes
    # gave 64/s and 16 gave 75/s). Per notifier process: two processes of 16 stay under the 50
    # connections per client that Postfix allows by default
    smtp_connections: int = 16
    # a session set up (EHLO, STARTTLS, log-in) is kept this long idle for the next batch, and
    # checked with a NOOP before its next mail; 0 closes each after its batch
    smtp_keep_idle_s: float = Field(default=30.0, ge=0)
    mail_from: str = "payhara-desk@example.invalid"
    # a real mail server (services/notifier/sending.py): STARTTLS, then a log-in when a username
    # is set. The defaults suit the local development sink: no TLS, no log-in. The certificate is
    # checked against the system's CAs, or smtp_tls_ca_file; smtp_tls_verify=false only for tests
    smtp_starttls: bool = False
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_tls_verify: bool = True
    smtp_tls_ca_file: str | None = None
    # a 4xx naming one recipient (a full mailbox) is tried this many times through the broker,
    # then the mail counts as bounced and an operator reaches the consultant another way; keep it
    # under delivery_limit, or the event reaches its DLQ first
    smtp_deferrals_before_task: int = Field(default=3, ge=1)
    # a receipt that is not urgent waits this long from the consultation's receipt for its first
    # booking, so that one mail tells both (services/notifier/acknowledging.py); 0 sends at once
    receipt_hold_s: float = Field(default=5.0, ge=0)
    mail_dir: str = "var/mail"  # where the development SMTP sink keeps what it receives

    intake_port: int = 8000
    eligibility_port: int = 8001
    scheduler_port: int = 8002
    notifier_port: int = 8003
    console_port: int = 8004
    http_host: str = "127.0.0.1"
    # processes per service on this machine, e.g. PAYHARA_WORKERS='{"intake": 2}': each one is a
    # full instance (HTTP, consumers, relay), as a second container would be
    workers: dict[str, int] = {}
    public_intake_url: str = "http://127.0.0.1:8000"
    # the desk's phone line, shown to consultants whenever the web form cannot help them
    desk_phone: str = "03-0000-0000"
    desk_hours: str = "平日 9:00〜18:00"
    # submissions (form and API) and status look-ups that intake takes from one client address in
    # a moving minute or hour, in the notation of `limits` ("5/minute", "5/minute;30/hour"); "0" is
    # no limit. The address is the ASGI client: behind a proxy, uvicorn's proxy headers set it from
    # the proxies it trusts. Left unset, both are "0" when env is "test": the test suite and the
    # benchmarks post hundreds of consultations from 127.0.0.1 (services/intake/protection.py)
    intake_rate_limit: str = "5/minute"
    intake_status_rate_limit: str = "10/minute"

    # unacknowledged deliveries per consumer: the consumer's concurrency and its largest batch
    # (bench/pipeline.py at 100/s offered, one process per service: 32 -> 75/s, 128 -> 88/s)
    prefetch: int = 128
    # under load (its last batch held more than one delivery) a consumer waits this long for a
    # batch to fill, for less CPU per event (bench/pipeline.py: 50 ms -> 88/s, 100 ms -> 92/s);
    # a delivery after a quiet spell goes at once
    consume_linger_s: float = 0.1
    delivery_limit: int = 5
    publish_timeout_s: float = 5.0
    relay_batch: int = 50  # rows published concurrently; more only times out confirms under load
    relay_poll_s: float = 2.0
    db_pool_size: int = 10
    # every database call has a limit well under a person's patience: a frozen database gives
    # a quick 503 (intake) or a paused consumer, never a request hanging for half a minute
    db_connect_timeout_s: float = 3.0
    db_statement_timeout_s: float = 5.0
    db_pool_timeout_s: float = 3.0
    # a consumer whose database or SMTP server is away holds its batch and retries after
    # 0.5 s, 1 s, 2 s ... up to this ceiling; past consume_hold_s (under RabbitMQ's 30 min
    # consumer_timeout) held deliveries go back to the tail of their queue, uncounted
    consume_retry_first_s: float = 0.5
    consume_retry_max_s: float = 15.0
    consume_hold_s: float = 600.0
    dead_letter_check_s: float = 60.0

    slot_capacity: int = 4  # callbacks one slot can take, unless the roster says otherwise
    # the weekly roster: callbacks per slot on a weekday, e.g. PAYHARA_SLOT_CAPACITY_BY_WEEKDAY=
    # '{"mon": 6, "fri": 2}' (mon..sun); a weekday not named takes slot_capacity. A date's own
    # capacity (`payhara roster set`) wins over both
    slot_capacity_by_weekday: dict[str, int] = {}
    # a slot keeps capacity // this many seats for urgent consultations (1 in 4; 0 keeps none)
    urgent_seats_one_in: int = 4
    # open days the desk means to call back within; when they are full a consultation is booked
    # further out all the same (flagged beyond_horizon, counted, logged), up to booking_furthest_days,
    # and only past that is it unschedulable
    email_capacity_per_day: int = 40  # replies by e-mail an open day takes (services/scheduler/email_days.py)
    booking_horizon_days: int = 10
    # a call nobody answered is tried again this long after at the earliest, up to max_attempts
    # calls in all; then the desk writes (services/scheduler/retries.py)
    next_attempt_after_minutes: int = Field(default=120, ge=0)
    max_attempts: int = Field(default=3, ge=1)
    booking_furthest_days: int = 60
    # seats of a day kept for the consultations intake promised it while the scheduler's news
    # that the day is filling up travels: a promise is never earlier than its booking
    availability_margin: int = 2
    # the desk calendar (shared/calendar.py), Japan times as HH:MM. A consultation received on an
    # open day before the cutoff is promised contact that day, after the lead an operator needs,
    # at the next slot start; later ones at opening time on the next open day. The file (relative
    # to the repository) lists the desk's own closures and openings, with who reviewed them
    calendar_file: str = "config/desk-calendar.toml"
    desk_opens: str = "09:00"
    desk_closes: str = "18:00"
    same_day_cutoff: str = "16:00"
    contact_lead_minutes: int = 60
    slot_minutes: int = 30
    # a notifier record still waiting for an event after this long is reported (its event is
    # probably in a DLQ): well above any backlog the desk works through, looked at every check
    waiting_alert_after_s: float = 1800.0
    waiting_check_s: float = 60.0

    console_secret: SecretStr = SecretStr(DEV_SECRET)
    # signs intake's form tokens (CSRF); falls back to console_secret, kept apart by its own salt
    form_secret: SecretStr | None = None
    # the operators' console (services/console/sessions.py, lockout.py): a session ends after
    # this long unused, and in any case this long after its log-in (a working day and a margin)
    console_session_idle_minutes: int = Field(default=30, ge=1)
    console_session_lifetime_hours: float = Field(default=10.0, gt=0)
    # this many failed log-ins within the window lock the login (or the address) for
    # console_lockout_minutes; an address gets a higher threshold, as a desk's operators may
    # share one (the office's NAT)
    console_login_failures_per_login: int = Field(default=5, ge=1)
    console_login_failures_per_address: int = Field(default=20, ge=1)
    console_login_failure_window_minutes: int = Field(default=15, ge=1)
    console_lockout_minutes: int = Field(default=15, ge=1)
    # a task an operator claimed and then left can be taken by another after this long (0: at
    # once, for tests); the holder keeps it, and can still record its outcome, until someone does
    console_claim_minutes: int = Field(default=30, ge=0)
    # the status code of a phone consultation, kept in clear only to be read out to the caller:
    # shown to the operator who entered it for this long after it is first shown, then erased
    # (services/console/phone_entry.py); the rest of the entry is deleted this long after the answer
    console_phone_code_minutes: int = Field(default=10, ge=1)
    console_phone_keep_hours: float = Field(default=24.0, gt=0)
    # who saw a consultation's personal data, and when (console.data_views, the supervisors'
    # /audit): kept this long, then deleted by the console's purge (about two years)
    console_data_views_keep_days: int = Field(default=731, ge=1)

    @model_validator(mode="after")
    def _weekly_roster_names_weekdays(self) -> "Settings":
        unknown = set(self.slot_capacity_by_weekday) - set(WEEKDAYS)
        negative = {k: v for k, v in self.slot_capacity_by_weekday.items() if v < 0}
        if unknown or negative or self.slot_capacity < 0:
            raise ValueError(f"PAYHARA_SLOT_CAPACITY_BY_WEEKDAY takes weekdays {', '.join(WEEKDAYS)} with "
                             f"capacities of 0 or more (unknown: {sorted(unknown)}, negative: {negative})")
        return self

    @model_validator(mode="after")
    def _no_default_secrets_outside_dev(self) -> "Settings":
        if self.env not in ("dev", "test") and self.console_secret.get_secret_value() == DEV_SECRET:
            raise ValueError("PAYHARA_CONSOLE_SECRET must be set outside dev and test")
        return self

    @model_validator(mode="after")
    def _smtp_log_in_over_tls(self) -> "Settings":
        if self.smtp_username and self.smtp_password is None:
            raise ValueError("PAYHARA_SMTP_USERNAME needs PAYHARA_SMTP_PASSWORD")
        if self.smtp_username and not self.smtp_starttls and self.env not in ("dev", "test"):
            raise ValueError("an SMTP log-in needs PAYHARA_SMTP_STARTTLS=true outside dev and test: "
                             "the password would cross the network in the clear")
        return self

    @model_validator(mode="after")
    def _rate_limits_in_limits_notation(self) -> "Settings":
        from limits import parse_many

        for name in ("intake_rate_limit", "intake_status_rate_limit"):
            if self.env == "test" and name not in self.model_fields_set:
                setattr(self, name, "0")
            value = getattr(self, name).strip()
            try:
                if value != "0":
                    parse_many(value)
            except ValueError:
                raise ValueError(f"PAYHARA_{name.upper()} takes a rate such as 5/minute or 5/minute;30/hour, "
                                 f"or 0 for no limit (got {value!r})") from None
        return self

    def port_of(self, service: str) -> int:
        return getattr(self, f"{service}_port")

    def workers_of(self, service: str) -> int:
        return max(1, self.workers.get(service, 1))

    def weekly_capacity(self, day: date) -> int:
        """Callbacks per slot on `day` by the weekly roster (a date's own roster entry aside)."""
        return self.slot_capacity_by_weekday.get(WEEKDAYS[day.weekday()], self.slot_capacity)


@lru_cache
def get_settings() -> Settings:
    return Settings()
