"""The one way consumers are written, with hand-written fake deliveries: a batch is handled in
one call and acked once; a failing batch is handled again one by one, and only what still fails
is requeued; a malformed message never reaches the handler; a dependency that is away pauses the
consumer, which holds its deliveries without nacking them (shared/failures.py decides which). (The same policy on the real
broker, DLQ included: tests/integration/test_dead_letter.py.)"""
import asyncio
import uuid

from aio_pika.exceptions import ChannelInvalidStateError

from shared import events as ev
from shared.messaging import Consumers
from shared.settings import Settings


class FakeChannel:
    is_closed = False


class FakeMessage:
    def __init__(self, body: bytes, channel: FakeChannel, tag: int, delivered_before: int = 0):
        self.body, self.channel, self.delivery_tag = body, channel, tag
        self.message_id = f"m{tag}"
        self.headers = {"x-delivery-count": delivered_before} if delivered_before else {}
        self.correlation_id = self.content_type = self.type = None
        self.settled: list[str] = []

    async def ack(self, multiple: bool = False) -> None:
        self.settled.append("ack-multiple" if multiple else "ack")

    async def nack(self, requeue: bool = True) -> None:
        self.settled.append("requeue" if requeue else "nack")

    async def reject(self, requeue: bool = False) -> None:
        self.settled.append("reject-requeue" if requeue else "reject")


def confirmed(n: int) -> ev.EligibilityConfirmed:
    return ev.EligibilityConfirmed(consultation_id=uuid.uuid4(), receipt_no=f"PH-261124-{n:04d}0",
                                   reason="active_member", contact_expected_from="2026-11-25")


def messages(bodies: list[bytes]) -> list[FakeMessage]:
    channel = FakeChannel()
    return [FakeMessage(body, channel, tag) for tag, body in enumerate(bodies, start=1)]


def body(event: ev.Event) -> bytes:
    return ev.wrap(event, event.consultation_id).model_dump_json().encode()


def scheduler_with(handler) -> Consumers:
    consumers = Consumers(Settings(env="test"), "scheduler")
    consumers.on(ev.EligibilityConfirmed)(handler)
    return consumers


async def test_a_batch_is_handled_in_one_call_and_acked_once_up_to_its_last_delivery():
    calls = []

    async def book(deliveries):
        calls.append([d.event.receipt_no for d in deliveries])

    consumers = scheduler_with(book)
    batch = messages([body(confirmed(n)) for n in range(3)])
    await consumers._handle(consumers.subscriptions[0], batch)
    assert calls == [["PH-261124-00000", "PH-261124-00010", "PH-261124-00020"]]
    assert [m.settled for m in batch] == [[], [], ["ack-multiple"]]


async def test_a_malformed_message_is_rejected_and_the_rest_of_the_batch_handled():
    calls = []

    async def book(deliveries):
        calls.append(len(deliveries))

    consumers = scheduler_with(book)
    wrong_type = ev.EligibilityRejected(consultation_id=uuid.uuid4(), receipt_no="x", reason="r")
    batch = messages([body(confirmed(1)), b"{broken", body(wrong_type), body(confirmed(2))])
    await consumers._handle(consumers.subscriptions[0], batch)
    assert calls == [2]
    assert [m.settled for m in batch] == [[], ["reject"], ["reject"], ["ack-multiple"]]


async def test_a_failing_batch_is_handled_one_by_one_and_only_the_failing_event_requeued():
    poison = confirmed(2)
    calls = []

    async def book(deliveries):
        calls.append(len(deliveries))
        if any(d.event == poison for d in deliveries):
            raise RuntimeError("this one cannot be booked now")

    consumers = scheduler_with(book)
    batch = messages([body(confirmed(1)), body(poison), body(confirmed(3))])
    await consumers._handle(consumers.subscriptions[0], batch)
    assert calls == [3, 1, 1, 1]
    assert [m.settled for m in batch] == [["ack"], ["requeue"], ["ack"]]


async def test_a_failing_single_delivery_is_requeued_once():
    async def book(deliveries):
        raise KeyError("a bug this message runs into")

    consumers = scheduler_with(book)
    (message,) = messages([body(confirmed(1))])
    await consumers._handle(consumers.subscriptions[0], [message])
    assert message.settled == ["requeue"]


async def test_deliveries_of_two_channels_are_acked_on_each():
    async def book(deliveries):
        pass

    consumers = scheduler_with(book)
    old, new = messages([body(confirmed(1))]), messages([body(confirmed(2)), body(confirmed(3))])
    await consumers._handle(consumers.subscriptions[0], old + new)
    assert [m.settled for m in old + new] == [["ack-multiple"], [], ["ack-multiple"]]


async def test_under_load_deliveries_right_behind_the_first_join_its_batch_within_the_linger():
    calls = []

    async def book(deliveries):
        calls.append(len(deliveries))

    consumers = Consumers(Settings(env="test", consume_linger_s=0.2), "scheduler")
    consumers.on(ev.EligibilityConfirmed)(book)
    subscription = consumers.subscriptions[0]
    load = messages([body(confirmed(n)) for n in range(10, 12)])
    first, *behind = messages([body(confirmed(n)) for n in range(3)])
    for message in load:  # two waiting at once: the consumer is under load
        subscription.waiting.put_nowait(message)
    runner = asyncio.create_task(consumers._run(subscription))
    try:
        await asyncio.sleep(0.05)
        await subscription.waiting.put(first)
        await asyncio.sleep(0.05)
        for message in behind:
            await subscription.waiting.put(message)
        await asyncio.sleep(0.3)
    finally:
        runner.cancel()
    assert calls == [2, 3]
    assert behind[-1].settled == ["ack-multiple"]


async def test_a_delivery_after_a_quiet_spell_does_not_wait_for_the_linger():
    handled = asyncio.Event()

    async def book(deliveries):
        handled.set()

    consumers = Consumers(Settings(env="test", consume_linger_s=30), "scheduler")
    consumers.on(ev.EligibilityConfirmed)(book)
    subscription = consumers.subscriptions[0]
    (lone,) = messages([body(confirmed(1))])
    runner = asyncio.create_task(consumers._run(subscription))
    try:
        await subscription.waiting.put(lone)
        await asyncio.wait_for(handled.wait(), 10)  # not the 30 s linger
    finally:
        runner.cancel()
    assert lone.settled == ["ack-multiple"]


async def test_a_stop_lets_the_batch_in_hand_finish_and_takes_no_more():
    handled = []

    async def book(deliveries):
        await asyncio.sleep(0.2)  # an e-mail being sent, say
        handled.extend(d.event.receipt_no for d in deliveries)

    consumers = Consumers(Settings(env="test", consume_linger_s=0), "scheduler")
    consumers.on(ev.EligibilityConfirmed)(book)
    subscription = consumers.subscriptions[0]
    cancelled = []

    async def stop_consuming():
        cancelled.append(True)

    subscription.stop_consuming = stop_consuming
    in_hand, later = messages([body(confirmed(1)), body(confirmed(2))])
    consumers._runners.append(asyncio.create_task(consumers._run(subscription)))
    await subscription.waiting.put(in_hand)
    await asyncio.sleep(0.05)
    await consumers.stop(grace_s=2)
    await subscription.waiting.put(later)
    await asyncio.sleep(0.05)
    assert cancelled == [True]
    assert handled == ["PH-261124-00010"] and in_hand.settled == ["ack-multiple"]
    assert later.settled == [], "nothing is taken after the stop"


class LostChannelMessage(FakeMessage):
    async def ack(self, multiple: bool = False) -> None:
        raise ChannelInvalidStateError("channel closed")


async def test_an_ack_on_a_lost_channel_does_not_keep_the_new_channel_from_its_acks():
    async def book(deliveries):
        pass

    consumers = scheduler_with(book)
    old = [LostChannelMessage(body(confirmed(1)), FakeChannel(), 7)]
    new = messages([body(confirmed(2))])
    await consumers._handle(consumers.subscriptions[0], old + new)
    assert new[0].settled == ["ack-multiple"]


class FakePublisher:
    """The consumers' publishing channel: what was published where, confirmed at once."""

    is_closed = False

    def __init__(self):
        self.published: list[tuple[str, dict]] = []
        self.default_exchange = self

    async def get_exchange(self, name, ensure=True):
        return self

    async def publish(self, message, routing_key, mandatory=True, timeout=None):
        self.published.append((routing_key, dict(message.headers)))


def fast(**settings) -> Settings:
    return Settings(env="test", consume_retry_first_s=0.01, consume_retry_max_s=0.02, **settings)


async def test_a_database_that_is_away_pauses_the_consumer_which_holds_the_batch_without_nacking():
    import asyncpg

    tries = []

    async def book(deliveries):
        tries.append(len(deliveries))
        if len(tries) <= 5:
            raise ConnectionRefusedError("database away")
        if len(tries) == 6:
            raise asyncpg.exceptions.CannotConnectNowError("the database system is starting up")

    consumers = Consumers(fast(), "scheduler")
    consumers.on(ev.EligibilityConfirmed)(book)
    batch = messages([body(confirmed(n)) for n in range(3)])
    await consumers._handle(consumers.subscriptions[0], batch)
    assert tries == [3] * 7, "the whole batch is retried until the database is back"
    assert [m.settled for m in batch] == [[], [], ["ack-multiple"]], "nothing nacked: no delivery counted"
    assert consumers.paused() == []


async def test_a_paused_consumer_reports_itself_and_resumes():
    release = asyncio.Event()

    async def book(deliveries):
        if not release.is_set():
            raise TimeoutError("statement timeout")

    consumers = Consumers(fast(), "scheduler")
    consumers.on(ev.EligibilityConfirmed)(book)
    batch = messages([body(confirmed(1))])
    handling = asyncio.create_task(consumers._handle(consumers.subscriptions[0], batch))
    await asyncio.sleep(0.1)
    assert consumers.paused() == ["scheduler.eligibility.confirmed.v1"]
    assert batch[0].settled == []
    release.set()
    await asyncio.wait_for(handling, 2)
    assert consumers.paused() == [] and batch[0].settled == ["ack-multiple"]


async def test_deliveries_held_past_the_hold_limit_go_back_to_the_tail_of_their_queue_uncounted():
    async def book(deliveries):
        raise ConnectionResetError("database away")

    consumers = Consumers(fast(consume_hold_s=0.05), "scheduler")
    consumers.on(ev.EligibilityConfirmed)(book)
    consumers._publisher = publisher = FakePublisher()
    batch = messages([body(confirmed(1)), body(confirmed(2))])
    batch[1].headers = {"x-delivery-count": 2}
    await asyncio.wait_for(consumers._handle(consumers.subscriptions[0], batch), 2)
    assert [key for key, _ in publisher.published] == ["scheduler.eligibility.confirmed.v1"] * 2
    assert all("x-delivery-count" not in headers for _, headers in publisher.published), "a fresh count"
    assert [m.settled for m in batch] == [["ack"], ["ack"]]


async def test_a_message_failing_on_its_last_allowed_delivery_goes_to_the_dlq_with_the_reason():
    async def book(deliveries):
        raise KeyError("a bug")

    consumers = Consumers(fast(delivery_limit=5), "scheduler")
    consumers.on(ev.EligibilityConfirmed)(book)
    consumers._publisher = publisher = FakePublisher()
    early, last = messages([body(confirmed(1)), body(confirmed(2))])
    early.headers, last.headers = {"x-delivery-count": 4}, {"x-delivery-count": 5}
    await consumers._handle(consumers.subscriptions[0], [early])
    await consumers._handle(consumers.subscriptions[0], [last])
    assert early.settled == ["requeue"]
    assert last.settled == ["ack"]
    [(routing_key, headers)] = publisher.published
    assert routing_key == "scheduler.eligibility.confirmed.v1.dlq"
    assert headers["x-payhara-reason"] == "handler failed 6 times: KeyError"
    assert headers["x-payhara-queue"] == "scheduler.eligibility.confirmed.v1"


async def test_a_malformed_message_goes_to_the_dlq_with_why_it_cannot_be_read():
    consumers = scheduler_with(lambda deliveries: None)
    consumers._publisher = publisher = FakePublisher()
    (message,) = messages([b'{"event_type": "eligibility.confirmed.v1"}'])
    await consumers._handle(consumers.subscriptions[0], [message])
    [(routing_key, headers)] = publisher.published
    assert routing_key.endswith(".dlq") and message.settled == ["ack"]
    assert headers["x-payhara-reason"].startswith("malformed: ")


async def test_a_stop_sends_held_deliveries_back_uncounted_instead_of_waiting_for_the_database():
    async def book(deliveries):
        raise OSError("database away")

    consumers = Consumers(Settings(env="test", consume_retry_first_s=5, consume_linger_s=0), "scheduler")
    consumers.on(ev.EligibilityConfirmed)(book)
    consumers._publisher = publisher = FakePublisher()
    subscription = consumers.subscriptions[0]
    subscription.stop_consuming = lambda: asyncio.sleep(0)
    (held,) = messages([body(confirmed(1))])
    consumers._runners.append(asyncio.create_task(consumers._run(subscription)))
    await subscription.arrive(held)
    await asyncio.sleep(0.1)
    await asyncio.wait_for(consumers.stop(grace_s=2), 3)
    assert held.settled == ["ack"] and len(publisher.published) == 1


async def test_a_stop_ends_even_when_the_broker_is_away_and_cancelling_would_wait_for_it():
    consumers = scheduler_with(lambda deliveries: None)
    subscription = consumers.subscriptions[0]
    subscription.stop_consuming = lambda: asyncio.sleep(3600)  # aio-pika waiting for a reconnect

    class Reconnecting:
        async def close(self):
            await asyncio.sleep(3600)

    consumers._connection = Reconnecting()
    subscription.idle.set()
    started = asyncio.get_running_loop().time()
    await asyncio.wait_for(consumers.stop(grace_s=1), 10)
    assert asyncio.get_running_loop().time() - started < 6
