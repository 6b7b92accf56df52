"""The incident state machine, observation by observation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.monitor.incidents import AppState, Decision, Observation, Seen, decide
from app.types import ApplicationHealth as Health
from app.types import NotificationEvent

T0 = datetime(2026, 12, 4, 20, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def run(observations: list[Observation]) -> tuple[AppState, list[NotificationEvent]]:
    state = AppState(Health.UNKNOWN, None, None)
    sent: list[NotificationEvent] = []
    for obs in observations:
        decision = decide(state, obs)
        if decision is None:
            continue
        if decision.event is not None:
            sent.append(decision.event)
        kind = state.open_kind
        if decision.opens is not None:
            kind = decision.opens
        if decision.recovers:
            kind = None
        state = AppState(decision.health, kind, obs.at)
    return state, sent


def test_a_first_up_is_healthy_and_sends_nothing() -> None:
    state, sent = run([Observation(Seen.UP, at(0))])
    assert state.health is Health.HEALTHY and sent == []


def test_a_crash_loop_is_one_app_down_then_one_recovered() -> None:
    loop = [Observation(Seen.DOWN, at(1 + 3 * i), detail={"exit_code": 3}) for i in range(10)]
    state, sent = run([Observation(Seen.UP, at(0)), *loop, Observation(Seen.UP, at(60))])
    assert sent == [NotificationEvent.APP_DOWN, NotificationEvent.RECOVERED]
    assert state.health is Health.HEALTHY and state.open_kind is None


def test_failing_health_then_down_is_one_incident() -> None:
    state, sent = run(
        [
            Observation(Seen.UP, at(0)),
            Observation(Seen.FAILING, at(10)),
            Observation(Seen.FAILING, at(15)),
            Observation(Seen.DOWN, at(16)),
        ]
    )
    assert sent == [NotificationEvent.HEALTH_CHECK_FAILED]
    assert state.health is Health.DOWN and state.open_kind is NotificationEvent.HEALTH_CHECK_FAILED


def test_failing_while_down_stays_down() -> None:
    state, _ = run([Observation(Seen.DOWN, at(1)), Observation(Seen.FAILING, at(2))])
    assert state.health is Health.DOWN


def test_observations_older_than_the_state_are_dropped() -> None:
    """Events replayed after a restart: the die before the recovery opens nothing."""
    state = AppState(Health.HEALTHY, None, at(30))
    assert decide(state, Observation(Seen.DOWN, at(5))) is None
    assert decide(state, Observation(Seen.DOWN, at(31))) == Decision(
        Health.DOWN, opens=NotificationEvent.APP_DOWN
    )


def test_a_second_incident_after_recovery_is_sent_again() -> None:
    _, sent = run(
        [
            Observation(Seen.DOWN, at(1)),
            Observation(Seen.UP, at(20)),
            Observation(Seen.DOWN, at(40)),
        ]
    )
    assert sent == [
        NotificationEvent.APP_DOWN,
        NotificationEvent.RECOVERED,
        NotificationEvent.APP_DOWN,
    ]
