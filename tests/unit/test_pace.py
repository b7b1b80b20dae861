"""The pace on a fake clock: its rules one by one, then the limiters providers run, each a modelled batch of
seconds in milliseconds (``pace_sim``: nginx's arithmetic, HAProxy's counter, the simulator's shapes)."""

from __future__ import annotations

import itertools
import math
import statistics

import pytest

from batchgen.pace import Pace
from batchgen.pace.flight import GAIN, START_WINDOW
from batchgen.pace.model import CRUISE, CRUISE_REQUESTS, FIRST_STEP, LEAST_STEP, MOST_STEP
from batchgen.pace.outage import DOWN_AFTER, FIRST_TRY
from batchgen.pace.phase import Phase
from batchgen.pace.slots import EVEN, TOLERANCE, Slots, Ticket

from ..support.pace_sim import Clock, Outcome, Provider, bring_down, simulate, simulate_many


def used(outcome: Outcome, start: float, end: float, limit: float) -> float:
    """Share of ``limit`` accepted per second between ``start`` and ``end`` seconds into the model."""
    accepted = sum(1 for at, status in outcome.sends if 1000 + start <= at < 1000 + end and status == 200)
    return accepted / (end - start) / limit


def drive(pace: Pace, clock: Clock, statuses: str, gap: float = 0.02) -> None:
    """One request at a time, each sent as soon as the pace allows and answered ``gap`` later: ``.`` accepted,
    ``x`` refused (429, no Retry-After), ``5`` failed (503)."""
    for status in statuses:
        clock.now += pace.wait()
        ticket = pace.send()
        clock.now += gap
        pace.answered(ticket, {"x": 429, "5": 503}.get(status, 200))
        pace.release()


def cruising(estimate: float = 20.0) -> tuple[Pace, Clock]:
    """A pace out of its start, cruising below ``estimate``."""
    clock = Clock()
    pace = Pace(start=2 * estimate, clock=clock)
    drive(pace, clock, ".")
    pace.model._cut(clock.now, pace.model.phase, estimate / 0.9)  # as after a first refusal at that rate
    pace.model.estimate = estimate
    pace.model._begin("cruise", clock.now, estimate * CRUISE)
    pace.model.drain_until = clock.now
    return pace, clock


# --- the rules ---


def test_no_two_requests_leave_closer_than_the_pace_allows_whatever_the_timer_does() -> None:
    slots, now, gaps, last = Slots(None), 0.0, [], None
    for index in range(2000):  # wake-ups late by 0-3 ms, one far late now and then (an idle spell)
        now += slots.wait(now) + 0.001 * (index % 4) + (0.5 if index % 500 == 0 else 0.0)
        slots.take(now, 50.0)
        gaps.append(now - last if last is not None else 1.0)
        last = now
    assert min(gaps) >= EVEN / 50.0 - 1e-9  # never a burst, not even after a late timer or an idle spell
    # a late wake-up is made up by the next slots, as far as the floor of the interval allows: 1.5 ms of mean
    # lateness on 20 ms costs 5%, not 7.5%
    assert 2000 / (now - 4 * 0.5) >= 0.94 * 50


def test_a_rate_cap_keeps_its_grid_when_a_wake_up_is_a_little_late() -> None:
    slots = Slots(10.0)
    slots.take(0.0, 1e9)
    assert slots.wait(0.05) == pytest.approx(0.05)
    slots.take(0.102, 1e9)  # 2 ms late: the next slot is still at 0.2, not 0.202
    assert slots.wait(0.15) == pytest.approx(0.05)
    slots.take(0.2 + TOLERANCE, 1e9)  # as late as the tolerance: still on the grid
    assert slots.wait(0.25) == pytest.approx(0.05)
    slots.take(0.5, 1e9)  # far late (idle): the grid restarts from now
    assert slots.wait(0.5) == pytest.approx(0.1)
    slots.pause(2.0)
    assert slots.wait(0.6) == pytest.approx(1.4)
    assert slots.wait(2.0 - 0.001) == 0.0  # less than a timer can wait: now


def test_a_rate_cap_is_delivered_when_the_provider_allows_more_and_never_exceeded() -> None:
    outcome, _pace = simulate(3000, Provider(), concurrency=32, latency=0.02, cap=200)
    assert outcome.accepted_rate >= 190
    times = [at for at, _ in outcome.sends]
    assert all(sum(1 for t in times[i : i + 210] if t < start + 1) <= 205 for i, start in enumerate(times))
    below, _pace = simulate(600, Provider(limit=20), concurrency=8, latency=0.02, cap=18)
    assert below.refused == 0 and below.accepted_rate >= 17.1


def test_the_start_grows_exponentially_from_a_window_of_four() -> None:
    outcome, pace = simulate(3000, Provider(), concurrency=10_000, latency=0.3, start_rate=10, jitter=0)
    per_round = [sum(1 for at, _ in outcome.sends if 1000 + 0.3 * k <= at < 1000 + 0.3 * (k + 1)) for k in range(10)]
    assert per_round[0] <= START_WINDOW  # before any answer, a handful in flight, not the whole concurrency
    assert all(later >= 1.2 * earlier for earlier, later in itertools.pairwise(per_round[2:]))
    assert per_round[9] >= 5 * per_round[0]
    assert pace.model.starting  # nothing refused: still starting


def test_a_probe_that_gets_more_through_raises_the_estimate_and_the_next_goes_twice_as_far() -> None:
    pace, clock = cruising(20.0)
    model = pace.model
    while model.phase.kind == "cruise":
        drive(pace, clock, ".")
    probe_rate, step = model.phase.rate, model.step
    assert probe_rate == pytest.approx(20.0 * (1 + FIRST_STEP))
    drive(pace, clock, "." * 30)
    assert model.estimate == pytest.approx(probe_rate)
    assert model.step == min(2 * step, MOST_STEP)


def test_a_probe_that_finds_the_limit_keeps_the_estimate_and_the_next_goes_half_as_far_later() -> None:
    pace, clock = cruising(20.0)
    model = pace.model
    while model.phase.kind == "cruise":
        drive(pace, clock, ".")
    patience = model.patience
    drive(pace, clock, "x")  # the probe's first answer is a refusal, the background none yet learned beyond
    assert model.phase.kind == "cruise" and model.estimate == 20.0
    assert model.step == FIRST_STEP / 2 and model.patience == 2 * patience
    assert model.drain_until >= clock.now - 0.02  # what the probe sent beyond the cruise is let go by first


def test_refusals_while_cruising_cut_the_estimate_once_per_phase() -> None:
    pace, clock = cruising(20.0)
    model = pace.model
    drive(pace, clock, "..")
    tickets = []
    for _ in range(6):  # six requests of one cruise in flight together
        clock.now += pace.wait()
        tickets.append(pace.send())
    clock.now += 0.02
    for ticket in tickets[:3]:  # three refusals in a cruise whose background is not yet known: a cut
        pace.answered(ticket, 429)
        pace.release()
    cut = model.estimate
    assert 0.5 * 20 <= cut <= 0.9 * 20
    for ticket in tickets[3:]:  # the rest of that cruise's refusals were sent before the cut: no second one
        pace.answered(ticket, 429)
        pace.release()
    assert model.estimate == cut


def test_a_steady_stream_of_scattered_429s_is_learned_as_background() -> None:
    outcome, pace = simulate(3000, Provider(p429=0.05, seed=2), concurrency=4, latency=0.05, seed=2)
    assert 0.02 <= pace.model.background.share <= 0.1
    assert outcome.resent_early == 0  # no row went again before its Retry-After


def test_a_run_pauses_only_when_most_answers_are_429s_with_a_retry_after() -> None:
    clock = Clock()
    pace = Pace(start=50.0, clock=clock)
    drive(pace, clock, "......")
    ticket = pace.send()
    clock.now += 0.05
    pace.answered(ticket, 429, 2.0)
    pace.release()
    assert pace.wait() < 1.0  # one 429 among successes: no run-wide pause
    tickets = [pace.send() for _ in range(4)]
    clock.now += 0.05
    for ticket in tickets:
        pace.answered(ticket, 429, 2.0)
        pace.release()
    assert pace.wait() == pytest.approx(2.0, abs=0.01)  # most of the round refused: everyone waits


def test_the_start_pauses_the_run_only_when_its_last_answers_are_429s_in_a_row() -> None:
    clock = Clock()
    pace = Pace(start=50.0, clock=clock)
    drive(pace, clock, "......")
    for statuses, pause in (((429, 200, 429, 429), False), ((429, 429, 429, 429), True)):
        assert pace.model.starting
        tickets = [pace.send() for _ in statuses]
        clock.now += 0.05
        for ticket, status in zip(tickets, statuses, strict=True):
            pace.answered(ticket, status, 2.0 if status == 429 else None)
            pace.release()
        # three of four refused, but not the last three: a fifth of all answers 429s at any rate does that now
        # and then, and a start paused on it found "the limit" in what got through of a few answers (1/s)
        assert (pace.wait() == pytest.approx(2.0, abs=0.01)) is pause


def test_a_young_run_pauses_only_when_its_last_answers_are_429s_in_a_row() -> None:
    """Out of the start, but a few answers old: three 429s of four, not the last three, are a third of all answers
    refused by chance. Paused on them, the run took what got through of a few answers for the limit (1/s): 16
    rows with 30% scattered 429s took 22 s instead of 2."""
    clock = Clock()
    pace = Pace(start=50.0, clock=clock)
    for status in (429, 429):  # the start is cut on two refusals, nothing got through
        ticket = pace.send()
        clock.now += 0.01
        pace.answered(ticket, status)
        pace.release()
    assert not pace.model.starting and len(pace.recent) < 20
    for status in (429, 200, 429, 429):
        clock.now += pace.wait()
        ticket = pace.send()
        clock.now += 0.01
        pace.answered(ticket, status, 2.0 if status == 429 else None)
        pace.release()
    assert pace.wait() < 1.0


def test_a_round_of_429s_no_denser_than_the_runs_own_share_pauses_nothing() -> None:
    clock = Clock()
    pace = Pace(start=50.0, clock=clock)
    for index in range(40):  # one answer in five a 429 with a Retry-After, scattered
        clock.now += pace.wait()
        ticket = pace.send()
        clock.now += 0.05
        pace.answered(ticket, 429, 2.0) if index % 5 == 4 else pace.answered(ticket, 200)
        pace.release()
    for status in (429, 200, 429, 429):  # three of four: a burst for a run that saw no 429 before, not here
        clock.now += pace.wait()
        ticket = pace.send()
        clock.now += 0.05
        pace.answered(ticket, status, 2.0 if status == 429 else None)
        pace.release()
    assert pace.wait() < 1.5  # the whole run did not wait out the Retry-After (2 s)


def test_scattered_429s_with_a_retry_after_do_not_drive_the_pace_down() -> None:
    # a fifth of the answers 429 (Retry-After 2 s), at any rate: no limit to find. Cuts that their own small
    # samples judged (two 429s of five "still refused") and run-wide pauses on three 429s of four drove the
    # pace to a few requests a second: 200 rows took 41 s on average and up to 200 s
    walls = []
    for seed in range(1, 13):
        outcome, _pace = simulate(200, Provider(p429=0.2, retry_after=2.0, seed=seed), concurrency=16, latency=0.2)
        walls.append(outcome.wall)
    assert statistics.mean(walls) <= 25 and max(walls) <= 60


def test_a_quota_pauses_the_run_for_its_retry_after_and_cuts_nothing() -> None:
    outcome, pace = simulate(300, Provider(quota=100), concurrency=8, latency=0.02, until=120)
    assert outcome.done == 100
    assert outcome.refused <= 8  # those in flight when the first quota answer came; then nothing is sent
    assert pace.wait() >= 3600 - 120
    assert pace.model.starting  # no cut: a quota says nothing about the pace


def test_remaining_taken_by_the_requests_in_flight_pauses_the_run_until_the_reset() -> None:
    clock = Clock()
    pace = Pace(start=100.0, clock=clock)
    tickets = [pace.send() for _ in range(3)]
    clock.now += 0.05
    pace.answered(tickets[0], 200, None, remaining=5, reset=4.0)
    assert pace.wait() < 1.0  # five left, two in flight: go on
    pace.release()
    pace.answered(tickets[1], 200, None, remaining=1, reset=3.9)
    assert pace.wait() == pytest.approx(3.9)  # one left, and one still in flight takes it


def test_remaining_said_to_a_request_counts_those_sent_before_it_that_are_answered_later() -> None:
    clock = Clock()
    pace = Pace(start=100.0, clock=clock)
    tickets = []
    for _ in range(3):
        tickets.append(pace.send())
        clock.now += 0.01
    pace.answered(tickets[2], 200, None, remaining=2, reset=4.0)  # the last sent, answered first
    pace.release()
    assert pace.wait() < 1.0  # two left: the two still in flight came in before it, and were counted
    pace.answered(tickets[0], 200, None, remaining=4, reset=4.0)
    pace.release()
    assert pace.wait() < 1.0  # four left when it came in: the one sent after it took one of them


def test_a_provider_down_is_probed_by_one_request_at_a_growing_interval() -> None:
    clock = Clock()
    pace = Pace(clock=clock)
    bring_down(pace, clock)
    assert pace.down and pace.room() and pace.wait() == pytest.approx(FIRST_TRY)
    clock.now += pace.wait()
    ticket = pace.send()
    assert not pace.room() and pace.wait() == float("inf")  # one probe at a time
    pace.answered(ticket, 503)
    pace.release()
    assert pace.wait() == pytest.approx(2 * FIRST_TRY)  # it failed: twice as long
    clock.now += pace.wait()
    pace.answered(pace.send(), 200)
    pace.release()
    assert not pace.down and pace.wait() <= 1.0  # answered: the run resumes at its pace


def test_a_request_that_never_left_gives_its_slot_back_and_is_not_counted() -> None:
    pace, clock = cruising(20.0)
    drive(pace, clock, "..")
    clock.now += pace.wait()
    phase, sent = pace.model.phase, pace.model.phase.sent
    ticket = pace.send()  # its row turned out to be held by another run: it never leaves
    assert pace.wait() > 0
    pace.unsent(ticket)
    pace.release()
    assert pace.wait() == 0  # the next row goes in its slot: a run walks past rows another holds at once
    assert phase.sent == sent  # no answer is awaited for it: the phase can be judged


def test_a_slot_given_back_after_a_later_one_was_taken_frees_nothing() -> None:
    pace, clock = cruising(20.0)
    drive(pace, clock, "..")
    clock.now += pace.wait()
    held = pace.send()  # its row's claim is on its way...
    clock.now += pace.wait()
    later = pace.send()  # ...while the next row takes the next slot
    pace.unsent(held)  # then it turns out to be held by another run
    pace.release()
    assert pace.wait() > 0.9 / later.rate  # the slot after the later one keeps its interval: no two at once


def test_refused_connections_before_any_answer_are_not_an_outage() -> None:
    clock = Clock()
    pace = Pace(clock=clock)
    for _ in range(3 * DOWN_AFTER):
        clock.now += 0.5
        pace.unanswered(pace.send())
        pace.release()
    assert not pace.down  # never answered: unreachable, which stops the run instead


def test_an_outage_in_the_model_costs_about_one_request_per_probe() -> None:
    clean, _ = simulate(300, Provider(), concurrency=8, latency=0.2)
    outage, _ = simulate(300, Provider(down=(2.0, 32.0)), concurrency=8, latency=0.2)
    assert outage.done == 300
    assert outage.requests <= 300 + 60  # those in flight and retried in the second it took to tell, one per probe
    assert outage.finished <= clean.finished + 30 + 2 * FIRST_TRY + 16


def test_scattered_5xx_do_not_slow_the_run() -> None:
    clock = Clock()
    pace = Pace(start=100.0, clock=clock)
    for index in range(200):
        ticket = pace.send()
        clock.now += 0.01
        pace.answered(ticket, 503 if index % 10 == 0 else 200)
        pace.release()
    assert pace.model.starting and pace.rate >= 100.0


def test_a_5xx_storm_slows_the_run_without_stopping_it() -> None:
    outcome, pace = simulate(500, Provider(p5xx=0.6), concurrency=16, latency=0.05)
    assert outcome.done == 500 and outcome.wall < 60 and pace.rate >= 1.0


# --- the limiters providers run (the model's versions; benchmarks/grid.py runs the real ones) ---


@pytest.mark.parametrize("latency", [0.02, 0.05, 0.2])
def test_a_sliding_window_is_found_and_used_with_few_429s(latency: float) -> None:
    outcome, _pace = simulate(600, Provider(limit=20), concurrency=8, latency=latency)
    assert outcome.accepted_rate >= 0.9 * 20
    assert outcome.refused <= 0.03 * outcome.requests


def test_a_strict_leaky_bucket_is_paced_evenly_just_below_its_rate() -> None:
    outcome, _pace = simulate(400, Provider(bucket=(20, 0)), concurrency=8, latency=0.02)
    assert outcome.accepted_rate >= 0.9 * 20  # main's CUBIC pace: 48% median on this shape
    assert outcome.refused <= 0.03 * outcome.requests


def test_a_counter_that_counts_refusals_too_is_not_driven_into_the_ground() -> None:
    outcome, _pace = simulate(1000, Provider(counting=50), concurrency=16, latency=0.1)
    assert outcome.accepted_rate >= 0.9 * 50
    assert outcome.refused <= 0.03 * outcome.requests


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_cap_on_requests_in_flight_is_found_and_held(seed: int) -> None:
    outcome, pace = simulate(1200, Provider(in_flight=4, seed=seed), concurrency=16, latency=0.1, seed=seed)
    assert outcome.accepted_rate >= 0.95 * 40
    assert outcome.refused <= 0.03 * outcome.requests
    assert pace.flight.bound == 4


def test_a_cap_on_generations_running_is_held_like_a_rate() -> None:
    outcome, _pace = simulate(1000, Provider(running=51, hold=1.0), concurrency=8, latency=0.02)
    assert outcome.accepted_rate >= 0.9 * 51 / 1.02
    assert outcome.refused <= 0.03 * outcome.requests


def test_a_window_the_provider_announces_is_waited_for_with_about_no_refusal() -> None:
    outcome, _ = simulate(400, Provider(fixed=(50, 5.0)), concurrency=16, latency=0.05)
    assert outcome.refused <= 3
    assert outcome.finished <= 7 * 5.0 + 1.5  # eight windows of 50: the perfect client's 35 s, about


def test_a_window_said_only_in_its_429s_costs_about_one_refusal_per_window() -> None:
    outcome, _ = simulate(400, Provider(fixed=(50, 5.0), announce=False), concurrency=16, latency=0.05)
    assert outcome.refused <= 2 * 8 + 8
    assert outcome.finished <= 7 * 5.0 + 2.0


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_limit_that_drops_and_rises_is_followed_within_seconds(seed: int) -> None:
    limit = {0: 20.0, 1: 5.0, 2: 40.0}  # 20/s, then 5/s from 20 s on, then 40/s from 40 s on to the end
    outcome, _pace = simulate(
        1600,
        Provider(limit_at=lambda t: limit[min(int((t - 1000) // 20), 2)], seed=seed),
        concurrency=32,
        latency=0.05,
        seed=seed,
    )
    end = max(at for at, status in outcome.sends if status == 200) - 1000
    for window, (start, stop) in enumerate(((5, 20), (25, 40), (45, end))):
        assert used(outcome, start, stop, limit[window]) >= 0.85, window
    assert outcome.refused <= 0.05 * outcome.requests


@pytest.mark.parametrize("concurrency", [1, 4, 16])
def test_scattered_429s_cost_little(concurrency: int) -> None:
    rows = 3000 if concurrency == 16 else 600
    reference, _ = simulate(rows, Provider(), concurrency=concurrency, latency=0.05)
    walls = []
    for seed in range(1, 5):
        provider = Provider(p429=0.05, seed=seed)
        outcome, _pace = simulate(rows, provider, concurrency=concurrency, latency=0.05, seed=seed)
        walls.append(outcome.wall / reference.wall)
        assert outcome.resent_early == 0
    # the last rows wait out their Retry-After whatever the pace: a second's tail on ten seconds of rows
    assert statistics.mean(walls) <= 1.22 and max(walls) <= 1.3


def test_a_fault_mix_costs_little() -> None:
    reference, _ = simulate(3000, Provider(), concurrency=16, latency=0.05)
    for seed in (1, 2, 3):  # scattered 429s and 5xx: no cut may stand on too little evidence and spiral down
        outcome, _pace = simulate(3000, Provider(p429=0.03, p5xx=0.07, seed=seed), concurrency=16, latency=0.05)
        assert outcome.wall <= 1.3 * reference.wall, seed


def test_two_runs_sharing_one_limit_get_it_together() -> None:
    refused, splits = [], []
    for seed in range(1, 9):
        (first, _), (second, _) = simulate_many(
            [600, 600], Provider(limit=20, seed=seed), concurrency=8, latency=0.05, seed=seed
        )
        end = 1000 + min(first.finished, second.finished)  # from the first request until one run is done
        accepted = [sum(at < end and status == 200 for at, status in run.sends) for run in (first, second)]
        assert sum(accepted) / (end - 1000) >= 0.9 * 20, seed
        splits.append(min(accepted) / sum(accepted))
        refused.append((first.refused + second.refused) / (first.requests + second.requests))
    # usually an even split; the runs cut and probe by multiples, so an uneven start can last (docs/pace.md)
    assert statistics.median(splits) >= 0.4 and min(splits) >= 0.15
    # the contract's 5% holds in most seeds; the start's overshoot on a shared key tips the mean just over it
    assert statistics.mean(refused) <= 0.055


@pytest.mark.parametrize("limit", [20, 50])
def test_the_start_is_judged_on_every_refusal_of_its_rounds_not_each_round_alone(limit: float) -> None:
    # a strict bucket at 500 ms, a start slower than the limit (16/s: what --concurrency 2 starts at): each round's
    # two refusals come back at once, its accepted answers a round later, and a round alone never showed enough;
    # the start ran on, 65% of its requests refused
    outcome, pace = simulate(
        round(20 * limit), Provider(bucket=(limit, 0)), concurrency=16, latency=0.5, transit=0.003, start_rate=16
    )
    assert not pace.model.starting
    assert outcome.refused <= 0.05 * outcome.requests


def test_a_cruise_that_judges_a_cut_sends_twice_the_requests_of_another() -> None:
    pace, clock = cruising(5.0)
    model = pace.model
    drive(pace, clock, "...")
    model.good = None  # no cruise held above it: a cut to what got through, judged by the next cruise
    model._cut(clock.now, model.phase, model.phase.rate)
    assert model.phase.judges is not None
    sent = 0
    while model.phase.kind == "cruise":
        drive(pace, clock, ".")
        sent += 1
    # with a fifth of all answers 429s, eight say little: a cut on scattered 429s stood when its judge saw none
    # in eight, and the next cut went further down (200 rows took 49 s, not 10)
    assert sent >= 2 * CRUISE_REQUESTS


@pytest.mark.parametrize(("limit", "concurrency", "latency"), [(2, 16, 0.1), (2, 64, 0.02), (5, 8, 0.1)])
def test_a_cut_still_refused_half_the_time_goes_deeper_instead_of_being_undone(
    limit: float, concurrency: int, latency: float
) -> None:
    # a strict bucket far below the start: a cut that lands above it is still refused every other request, which
    # no background explains; undoing it (as for scattered 429s) refused 70-106 requests of 110-206 here
    outcome, _pace = simulate(
        round(20 * limit), Provider(bucket=(limit, 0)), concurrency=concurrency, latency=latency, transit=0.003
    )
    assert outcome.refused <= 20 and outcome.requests <= round(20 * limit) + 20


def test_a_probe_is_judged_on_what_5xx_leave_of_it() -> None:
    pace, clock = cruising(20.0)
    while pace.model.phase.kind == "cruise":
        drive(pace, clock, ".")
    probe = pace.model.phase.rate
    for _ in range(4):  # 3 in 10 answered 503 (issue 30: 20% 429 and 10% 503 collapsed the pace)
        drive(pace, clock, "..5.5..5..")
    assert pace.model.estimate >= probe  # all it could get through got through: the limit is higher


def test_a_probe_is_judged_net_of_the_share_of_429s_of_the_cruise_before_it() -> None:
    pace, clock = cruising(10.0)
    model = pace.model
    model.background.heard, model.background.refused = 90.0, 9.5  # learned so far: a tenth
    # the cruise before the probe: a fifth of its answers 429s, too few to cut on (the background was not learned)
    model.base = Phase(1, "cruise", 9.85, sent=20, answers=20, accepted=16, refused=4, first=0.0, last=2.0)
    probe = Phase(2, "probe", 12.5, sent=13, answers=13, accepted=10, refused=3, first=2.0, last=3.0)
    model._phases[probe.serial] = probe
    model._judge(clock.now, probe, bounded=False)
    # it got through what its rate gets with a fifth refused, as the cruise did: more got through, not "held back
    # by something else" because the background was thought a tenth (the pace stayed where a wrong cut left it)
    assert model.estimate > 11.0 and model.phase.kind == "probe"


def test_a_cut_undone_teaches_the_background_even_when_a_third_of_its_answers_were_429s() -> None:
    pace, _clock = cruising(20.0)
    background = pace.model.background
    share = background.share
    # a cut from 40/s on four 429s of eleven; the cruise after it, at half the rate, refused as often and got less
    # through: the 429s were never the pace's (a fifth of all answers here, a third in these few by chance)
    cut = Phase(1, "cruise", 40.0, sent=11, answers=11, accepted=7, refused=4, first=0.0, last=0.3, cut=True)
    after = Phase(2, "cruise", 20.0, sent=16, answers=16, accepted=10, refused=6, first=0.5, last=1.3)
    after.judges, after.before = cut, 40.0
    pace.model._done(after)
    assert pace.model.estimate == 40.0  # undone...
    # ...and both taught the background, though above a quarter refused (until it was learned, each such run of
    # chance cut the pace again: 200 rows at a fifth of 429s took 75 s instead of 13)
    assert background.heard == pytest.approx(27.0, rel=0.05) and background.share > 2 * share
    far = Phase(3, "cruise", 40.0, sent=16, answers=16, accepted=4, refused=12, first=2.0, last=2.5, cut=True)
    later = Phase(4, "cruise", 20.0, sent=16, answers=16, accepted=4, refused=12, first=3.0, last=3.8)
    later.judges, later.before = far, 40.0
    heard = background.heard
    pace.model._done(later)
    assert background.heard == heard  # three quarters refused is about the pace, however slow


def test_two_429s_in_a_row_cut_nothing_where_a_fifth_of_all_answers_are_429s() -> None:
    """Two 429s in a row with nothing accepted cut by half: far too fast, were they rare by chance (at the 5%
    presumed, 1 in 400). Where a fifth of all answers are 429s whatever the pace, two in a row come every few
    phases, and each halved the pace; three, 1 in 125, still cut."""
    pace, clock = cruising(20.0)
    pace.model.good = None  # no probe's success to go back from
    background = pace.model.background
    background.heard, background.refused = 200.0, 40.0
    drive(pace, clock, "xx")
    assert pace.model.estimate == 20.0
    drive(pace, clock, "x")
    assert pace.model.estimate < 15.0


def test_a_probe_that_got_more_through_teaches_no_background() -> None:
    pace, clock = cruising(20.0)
    while pace.model.phase.kind == "cruise":
        drive(pace, clock, ".")
    share, before, probe = pace.model.background.share, pace.model.estimate, pace.model.phase.rate
    for _ in range(3):  # a burst allowance lets most of it through, its last requests refused
        drive(pace, clock, "." * 12 + "x")
    assert probe >= pace.model.estimate >= 0.95 * probe > before  # more got through: about what did
    # the probe's refusals may be the allowance running out: only a cruise that held says what the background is
    assert pace.model.background.share == share


def test_a_probes_success_that_does_not_last_is_given_up_after_few_refusals() -> None:
    pace, clock = cruising(20.0)
    drive(pace, clock, "." * 30)
    while pace.model.phase.kind != "probe":
        drive(pace, clock, ".")
    while pace.model.phase.kind == "probe":  # a burst allowance lets the probes through...
        drive(pace, clock, ".")
    raised, good, refusals = pace.model.estimate, pace.model.good, 0
    assert good is not None and raised > good
    while pace.model.estimate >= raised and refusals < 10:  # ...and the cruise at their rate runs it out
        drive(pace, clock, "....x")
        refusals += 1
    # a whole cruise held lower: going back there costs little, so less evidence is asked (it took 3-4)
    assert pace.model.estimate <= good and refusals <= 2


def test_after_a_probe_is_refused_the_next_ones_stay_below_its_rate() -> None:
    pace, clock = cruising(20.0)
    while pace.model.phase.kind == "cruise":
        drive(pace, clock, ".")
    refused = pace.model.phase.rate
    drive(pace, clock, "x")
    probes: dict[int, float] = {}
    for _ in range(500):  # every later probe gets everything through
        drive(pace, clock, ".")
        if pace.model.phase.kind == "probe":
            probes[pace.model.phase.serial] = pace.model.phase.rate
        if len(probes) == 3:
            break
    assert len(probes) == 3 and pace.model.estimate > 20.0  # more got through...
    assert max(probes.values()) < refused  # ...but no probe went where one was refused: the limit is below it


def test_a_cap_in_flight_that_refused_one_more_lets_the_window_alone_hold_requests() -> None:
    pace, clock = cruising(20.0)
    pace.flight.bound = 4  # a cap on requests in flight, as where the start's refusals fell showed it
    base, phase = pace.rate, pace.model.phase.serial
    pace.answered(Ticket(clock.now, phase, flight=5, rate=base), 429)  # refused with one more in flight
    # the cap is the provider's: pacing at what it allows on average would hold requests back when answers
    # come early, so the pace goes faster and the window holds them
    assert pace.rate == pytest.approx(GAIN * base)
    pace.answered(Ticket(clock.now, phase, flight=3, rate=base), 429)  # refused within it: a rate after all
    assert pace.flight.bound is None and pace.rate <= base


def test_one_accepted_request_with_fewer_in_flight_than_the_refused_ones_is_no_cap() -> None:
    pace, clock = cruising(8.0)
    phase = pace.model.phase
    for _ in range(4):
        pace.model.sent(clock.now)
    # scattered 429s that happened to come with more in flight than the one request accepted: read as a cap
    # of one in flight, they held a run at c=4 and 500 ms to two requests a second for a minute
    for flight, status in ((1, 200), (3, 429), (4, 429), (4, 429)):
        clock.now += 0.05
        pace.answered(Ticket(clock.now - 0.5, phase.serial, flight=flight, rate=phase.rate), status)
    assert pace.flight.bound is None and phase.cut  # cut as a rate's refusals, not bounded as a cap's


def test_a_probe_refused_for_one_more_in_flight_puts_no_bound_on_the_rate() -> None:
    pace, clock = cruising(20.0)
    while pace.model.phase.kind == "cruise":
        drive(pace, clock, ".")
    clock.now += pace.wait()
    ticket = pace.send()
    clock.now += 0.02  # refused beyond a cap on requests in flight: the window's business
    pace.model.answered(clock.now, ticket.phase, 0.02, "bounded", ticket.rate, ticket.flight)
    assert pace.model.phase.kind == "cruise" and pace.model.refused_at == math.inf


def test_probes_that_find_the_limit_narrow_to_the_least_step_and_no_further() -> None:
    pace, clock = cruising(20.0)
    steps = []
    for _ in range(8):  # every probe finds the limit at once
        while pace.model.phase.kind == "cruise":
            drive(pace, clock, ".")
        drive(pace, clock, "x")
        steps.append(pace.model.step)
    assert steps[:3] == [FIRST_STEP / 2, FIRST_STEP / 4, FIRST_STEP / 8]  # narrowing on the limit...
    assert min(steps) >= LEAST_STEP  # ...never below the least; after a long cruise, a wider probe again
