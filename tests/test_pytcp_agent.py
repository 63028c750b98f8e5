"""The PyTCP agent's own logic, without a lab: what its `states` call says of
when a session next sends by itself (fence.QUIET_VIEW), and its timer
rounds.  The agent is a program, loaded here from its file."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import pytest

AGENT = Path(__file__).resolve().parents[1] / "conformance" / "stacks" / "pytcp" / "agent.py"
spec = importlib.util.spec_from_file_location("pytcp_agent", AGENT)
agent = importlib.util.module_from_spec(spec)
spec.loader.exec_module(agent)


class Session(SimpleNamespace):
    def __str__(self):
        return "S"      # PyTCP names a session's timers after it


def session(state="ESTABLISHED", **changes):
    """A session at rest: everything received acknowledged, everything sent
    acknowledged, nothing waiting."""
    fields = dict(_state=SimpleNamespace(name=state), _rcv_nxt=1001, _rcv_una=1001,
                  _snd_ini=5000, _snd_una=5101, _snd_nxt=5101, _snd_max=5101, _snd_fin=0,
                  _closing=False, _tx_buffer=b"x" * 100, _tx_buffer_nxt=100)
    fields.update(changes)
    return Session(**fields)


@pytest.mark.parametrize("state, changes, sends_in", [
    ("ESTABLISHED", {}, None),
    ("ESTABLISHED", {"_rcv_nxt": 1006}, 40),                      # a delayed ACK owed
    ("ESTABLISHED", {"_snd_max": 5201, "_snd_nxt": 5201}, 700),   # unacknowledged: retransmission
    ("ESTABLISHED", {"_rcv_nxt": 1006, "_snd_max": 5201, "_snd_nxt": 5201}, 40),
    ("ESTABLISHED", {"_snd_max": 5201}, 0),                       # retransmission requested
    ("ESTABLISHED", {"_tx_buffer": b"x" * 150}, 0),               # text waiting to go
    ("ESTABLISHED", {"_closing": True}, 0),                       # close() called: a FIN to send
    ("CLOSE_WAIT", {"_closing": True}, 0),
    ("SYN_RCVD", {"_snd_nxt": 5000}, 0),                          # SYN+ACK not sent yet
    ("FIN_WAIT_1", {"_snd_fin": 5102}, 0),                        # FIN not sent yet
    ("LAST_ACK", {"_snd_una": 5100, "_snd_fin": 5101}, 0),        # no timer for SND.UNA
    ("FIN_WAIT_2", {}, None),
    ("TIME_WAIT", {}, None),
])
def test_a_session_says_when_its_timer_would_next_send(state, changes, sends_in):
    timer = SimpleNamespace(tcpconf_accounted=agent.time.monotonic(), _timers={
        "S-delayed_ack": 40, "S-retransmit_seq-5101": 700})
    got = agent.sends_in(session(state, **changes), timer)
    if sends_in:                    # counted down from the round: a millisecond may pass
        assert sends_in - 5 <= got <= sends_in
    else:
        assert got == sends_in


def test_a_timers_count_is_taken_down_by_the_time_since_its_round():
    timer = SimpleNamespace(tcpconf_accounted=agent.time.monotonic() - 0.3,
                            _timers={"S-retransmit_seq-5101": 1000})
    assert 690 <= agent.time_left(timer, "S-retransmit_seq-5101") <= 700
    assert agent.time_left(timer, "S-delayed_ack") == 0         # not running: run out
    timer.tcpconf_accounted -= 2
    assert agent.time_left(timer, "S-retransmit_seq-5101") == 0


def task(delay, repeat=-1, calls=None):
    calls = [] if calls is None else calls
    return SimpleNamespace(_remaining_delay=delay, _delay=delay, _delay_exp=False,
                           _delay_exp_factor=0, _repeat_count=repeat, _stop_condition=None,
                           _method=lambda: calls.append(1), _args=[], _kwargs={}), calls


def test_a_round_runs_a_due_task_once_and_counts_the_time_that_passed():
    every_ms, calls = task(1)
    agent.advance(every_ms, 5)              # 5 ms passed: one call, not five
    assert calls == [1] and every_ms._remaining_delay == 1
    later, later_calls = task(100, repeat=0)
    agent.advance(later, 60)
    assert later_calls == [] and later._remaining_delay == 40
    agent.advance(later, 60)
    assert later_calls == [1] and later._remaining_delay == 0       # done: retired
