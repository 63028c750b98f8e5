"""The TCB each setup of conformance/setups.yaml reaches, found by running
the setup's steps through the model: the tester's segments through SEGMENT
ARRIVES, the application's calls through .calls, each expected answer and
state checked on the way.  The numbers the model starts a case from are
therefore the setups' own, not a second table of them."""

from __future__ import annotations

from functools import lru_cache

from .. import tcp
from ..case import load_setups
from ..seq import seq_add, seq_diff, seq_gt, seq_le
from ..steps import App, Expect, Send, StateCheck
from .arrives import Unmodelled, segment_arrives
from .calls import app_call
from .classify import Segment
from .tcb import Tcb


class SetupError(Exception):
    """A setup the model does not walk as setups.yaml writes it: a finding
    about the model or the setup, named with the step."""


@lru_cache(maxsize=None)
def reach(role: str, start: str, iss: int = 0, irs: int = 0, rcv_wnd: int = 64240,
          snd_wnd: int = 65535) -> Tcb:
    """The TCB the setup (role, start) leaves the target in: its ISS `iss`,
    the tester's ISN `irs`, the target's window `rcv_wnd`, the tester's
    `snd_wnd` (the setups offer 65535)."""
    tcb = Tcb("CLOSED", iss=iss, rcv_wnd=rcv_wnd, max_snd_wnd=snd_wnd)
    if role == "listener":
        [tcb] = [o.tcb for o in app_call(tcb, "listen")]
    # The tester's own numbers, as connection.Connection keeps them.
    snd_nxt, rcv_nxt = irs, None
    pending = []        # the target's segments not yet taken by an expect
    for step in load_setups()[(role, start)]:
        where = f"setup {role} {start}, line {step.line}"
        try:
            if isinstance(step, Send):
                seq, ack, end = _numbers(step, snd_nxt, rcv_nxt, irs, iss)
                seg = Segment(step.flags, seq, ack=ack, wnd=snd_wnd, length=len(step.payload))
                outcome = next(o for o in segment_arrives(tcb, seg) if o.conforms)
                if step.flags & tcp.SYN or (seq_le(seq, snd_nxt) and seq_gt(end, snd_nxt)):
                    snd_nxt = end
            elif isinstance(step, App):
                [outcome] = app_call(tcb, step.op)
            elif isinstance(step, Expect):
                if not pending:
                    raise SetupError(f"{where}: expected a segment, the model sends none")
                answer = pending.pop(0)
                _check_answer(step, answer, _view(snd_nxt, rcv_nxt, irs, iss), irs, iss, where)
                rcv_nxt = seq_add(answer.seq if answer.seq is not None else iss,
                                  bool(answer.flags & tcp.SYN) + bool(answer.flags & tcp.FIN))
                continue
            elif isinstance(step, StateCheck):
                if tcb.state != step.state:
                    raise SetupError(f"{where}: expected {step.state}, the model is in "
                                     f"{tcb.state}")
                continue
            else:
                raise SetupError(f"{where}: a {type(step).__name__} step is not walked")
        except Unmodelled as exc:
            raise SetupError(f"{where}: {exc}") from None
        tcb = outcome.tcb
        if not outcome.answer.silent:
            pending.append(outcome.answer)
    return tcb


def _view(snd_nxt: int, rcv_nxt: int | None, irs: int, iss: int) -> dict[str, int]:
    """The names a setup's steps use, relative to each side's ISN."""
    return {"snd_nxt": seq_diff(snd_nxt, irs), "snd_una": 0, "snd_wnd": 0,
            "rcv_nxt": seq_diff(rcv_nxt, iss) if rcv_nxt is not None else 0}


def _check_answer(step: Expect, answer, view: dict, irs: int, iss: int, where: str) -> None:
    """The model's answer is the one the setup expects: its flags, and its
    seq and ack where the setup writes them."""
    if step.flags is not None and answer.flags & ~step.optional_flags != step.flags:
        raise SetupError(f"{where}: expected {tcp.format_flags(step.flags)}, the model "
                         f"answers {tcp.format_flags(answer.flags)}")
    for name, base in (("seq", iss), ("ack", irs)):
        written, got = getattr(step, name), getattr(answer, name)
        if written is not None and got is not None and seq_add(base, written.evaluate(view)) != got:
            raise SetupError(f"{where}: expected {name}={written}, the model answers "
                             f"{name}={seq_diff(got, base)}")


def _numbers(step: Send, snd_nxt: int, rcv_nxt: int | None, irs: int,
             iss: int) -> tuple[int, int, int]:
    """The segment's seq and ack as the tester writes them (relative to each
    side's ISN; defaults SND.NXT and RCV.NXT), and where it ends."""
    view = _view(snd_nxt, rcv_nxt, irs, iss)
    seq = seq_add(irs, step.seq.evaluate(view)) if step.seq is not None else snd_nxt
    if step.ack is not None:
        ack = seq_add(iss, step.ack.evaluate(view))
    else:
        ack = (rcv_nxt or 0) if step.flags & tcp.ACK else 0
    end = seq_add(seq, len(step.payload) + bool(step.flags & tcp.SYN)
                  + bool(step.flags & tcp.FIN))
    return seq, ack, end


def after_setup(state: str, iss: int = 0, irs: int = 0, rcv_wnd: int = 64240) -> Tcb:
    """The TCB of a listener brought to `state` by the suite's setup."""
    return reach("listener", state, iss, irs, rcv_wnd)


def setup_tcb(role: str, start: str) -> Tcb | None:
    """The TCB a case's setup reaches, or None where the model cannot walk
    the setup (or there is none)."""
    if (role, start) not in load_setups():
        return None
    try:
        return reach(role, start)
    except SetupError:
        return None
