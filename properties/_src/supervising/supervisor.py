"""Check implementations in child processes the parent watches, so the harness survives what
it checks, with the work spread over lanes.

The work is a unit of cases (``catalog.units``: a tier's property cases together, every other
case alone) of one implementation. Up to ``jobs`` lanes run at once, each a child process
(spawned: JAX is not fork-safe) that loads one implementation and checks the units the parent
hands it, one at a time, streaming events over a pipe: a unit started, an update about to be
run, a unit finished with its results. So one implementation's units use every lane, and the
parent always knows the update in flight. A new lane takes the first implementation (in the
order named) with units left that no lane is on, else the one with the most units left, and
stays on it while it has some. Within an implementation a lane takes units of the shapes its
child has compiled (``Unit.shapes``: the pool's, or a sequence case's own) before others, and
a new lane those no other lane is compiling: an interpreted kernel's programs call back into
Python, so no cache on disk shares them between children.

A child that dies (a segfault in a native kernel, an ``os._exit``) gives status ``crashed`` to
the cases of the unit it was in; one whose current example runs past the timeout is killed and
gives ``timed-out``; either way the update it was running is the counterexample, and the
remaining units go on in a fresh child. Other lanes are unaffected.

On a crash or a timeout the counterexample also shows where the child was (its Python stack,
written by ``faulthandler`` as it died, or on request just before a hung child is killed).
The timeout applies while an update is in flight: the implementation's own code runs only then
(its module was imported by the parent already, to check that it loads).
"""

from __future__ import annotations

import contextlib
import faulthandler
import multiprocessing
import os
import signal
import tempfile
import time
from collections import deque
from collections.abc import Iterable, Sequence
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Protocol

from oracle.contract import Update
from properties._src.calling import compilation_cache
from properties._src.calling.implementations import load
from properties._src.calling.placement import MeshShape, ensure_cpu_devices
from properties._src.cases.catalog import CASES, MESH_CASES, Case, Unit, units
from properties._src.judging.checks import MATCHES_ORACLE
from properties._src.judging.steps import Failure
from properties._src.reporting.report import render
from properties._src.reporting.results import CaseResult
from properties._src.running.api import check

# Per example: about ten times the slowest example measured (the interpreted Pallas kernel
# compiling a new shape bucket, cold, on a loaded 2-core machine: `benchmarks.example_seconds`).
DEFAULT_TIMEOUT = 120.0
HARNESS = str(Path(__file__).parent)  # frames from here on down a stack are the harness's own
STACK_WAIT = 2.0  # seconds a hung child gets to write its stack before it is killed
EXIT_WAIT = 10.0  # seconds a child that finished gets to exit before it is killed

# What a child sends: (STARTED, unit index), (CALLING, update), (FINISHED, [CaseResult.to_dict()
# for each case of the unit]). What the parent sends: the index of the next unit, or None: exit.
STARTED, CALLING, FINISHED = "started", "calling", "finished"


class Listener(Protocol):
    """What the parent reports as the children's events arrive."""

    def case_started(self, name: str, case: Case) -> None: ...

    def example_started(self, name: str, case: Case, examples: int) -> None: ...

    def case_finished(self, name: str, result: CaseResult) -> None: ...


def _child(
    connection: Connection, spec: str, units: list[list[str]], options: dict, stack_file: str
) -> None:
    """A lane's work: load ``spec``, then check each unit (its case ids) the parent names,
    reporting as it goes, until the parent says no more."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's; it ends the children
    with open(stack_file, "w") as stack:  # open until the child ends, for faulthandler
        faulthandler.enable(stack)
        faulthandler.register(signal.SIGUSR1, stack)
        compilation_cache.enable()  # JAX's settings are per process
        if options.get("mesh"):  # before the implementation's import can start JAX
            ensure_cpu_devices(MeshShape.parse(options["mesh"]).devices)
        implementation = load(spec)
        by_id = {case.id: case for case in CASES + MESH_CASES}
        while (index := connection.recv()) is not None:
            connection.send((STARTED, index))
            results = check(
                implementation,
                cases=tuple(by_id[case_id] for case_id in units[index]),
                before_call=lambda update: connection.send((CALLING, update)),
                **options,
            ).results
            connection.send((FINISHED, [result.to_dict() for result in results]))
    connection.close()


class _Lane:
    """A child checking one implementation's units, one at a time."""

    process: BaseProcess
    connection: Connection
    stack_file: Path

    def __init__(self, spec: str, units: Sequence[Unit]):
        self.spec, self.units = spec, units
        self.unit: int | None = None  # the unit handed to the child, until its results come
        self.case_started: float | None = None  # when the child started on it
        self.update: Update | None = None
        self.update_started = 0.0
        self.examples = 0
        self.shapes: str | None = None  # those of the last unit handed: its child compiled them

    def start(self, context, options: dict, directory: Path) -> None:
        """A fresh child for this lane's implementation."""
        descriptor, name = tempfile.mkstemp(suffix=".stack", dir=directory)
        os.close(descriptor)
        self.stack_file = Path(name)
        self.mesh = options.get("mesh")  # for the snippet of a crash's counterexample
        ours, theirs = context.Pipe()
        case_ids = [[case.id for case in unit.cases] for unit in self.units]
        self.process = context.Process(
            target=_child,
            args=(theirs, self.spec, case_ids, options, str(self.stack_file)),
            name=f"kvcache-check {self.spec}",
            daemon=True,
        )
        self.process.start()
        theirs.close()  # the child holds the only other end: its death is our end of file
        self.connection = ours

    def hand(self, index: int) -> None:
        """Have the child check unit ``index`` next."""
        self.unit, self.case_started, self.update, self.examples = index, None, None, 0
        self.shapes = self.units[index].shapes
        self.connection.send(index)

    @property
    def cases(self) -> tuple[Case, ...]:
        """The cases of the unit in flight."""
        assert self.unit is not None
        return self.units[self.unit].cases

    def deadline(self, timeout: float) -> float | None:
        """When the example in flight times out (``None``: no example in flight)."""
        return None if self.update is None else self.update_started + timeout

    def kill(self) -> None:
        """End the child now."""
        if self.process.is_alive():
            self.process.kill()
        self.reap()

    def stop(self) -> None:
        """Tell the child there is no more, and wait for it to exit."""
        with contextlib.suppress(OSError):  # it has gone already
            self.connection.send(None)
        self.reap()

    def reap(self) -> None:
        """Wait for the child to exit (killing it if it takes long) and close its pipe."""
        self.process.join(EXIT_WAIT)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.connection.close()

    def ask_for_stack(self) -> None:
        """Have the child write its Python stack (its ``faulthandler`` answers SIGUSR1), and
        give it a moment to."""
        if self.process.pid is None:
            return
        os.kill(self.process.pid, signal.SIGUSR1)
        until = time.monotonic() + STACK_WAIT
        while not self.stack_file.stat().st_size and time.monotonic() < until:
            time.sleep(0.05)
        time.sleep(0.05)  # for the rest of the stack after its first bytes

    def stack(self) -> str:
        """The frames of the child's Python stack above the harness (the implementation's),
        innermost first, as ``faulthandler`` wrote them; empty if it wrote none."""
        text = self.stack_file.read_text(errors="replace")
        _, current, frames = text.partition("Current thread")
        kept = []
        for line in frames.splitlines()[1:] if current else ():
            if not line.startswith('  File "') or line.startswith(f'  File "{HARNESS}'):
                break
            kept.append(line)
        return "\n".join(kept)

    def ended_results(self, status: str, message: str) -> list[CaseResult]:
        """The results of the unit in flight when its child ended abnormally: each case's."""
        where = self.stack()
        if where:
            message += f"\nwhere (innermost first):\n{where}"
        seconds = 0.0 if self.case_started is None else time.monotonic() - self.case_started
        results = []
        for case in self.cases:
            text = message
            if self.update is not None:
                prop = getattr(case, "prop", MATCHES_ORACLE)  # a sequence case checks the oracle
                failure = Failure(self.update, None, message, prop=prop.name)
                text = render(self.spec, failure, mesh=self.mesh)
            results.append(
                CaseResult(
                    property=case.name,
                    tier=case.tier.name.lower(),
                    status=status,
                    examples=self.examples,
                    seconds=round(seconds, 3),
                    counterexample=text,
                )
            )
        self.unit = None
        return results


def _death(exitcode: int | None, in_flight: bool) -> str:
    """Why a child ended, for the counterexample's first line."""
    if exitcode is not None and exitcode < 0:
        number = -exitcode
        name = signal.Signals(number).name if number in signal.valid_signals() else number
        how = f"was killed by signal {name} ({signal.strsignal(number)})"
    else:
        how = f"exited with status {exitcode}"
    during = (
        "while checking the update below"
        if in_flight
        else "before the implementation was called on any update of this case"
    )
    return f"the child process checking the implementation {how} {during}"


def _next_spec(pending: dict[str, deque[int]], active: list[_Lane]) -> str | None:
    """The implementation a new lane takes: the first (in the order named) with units left
    that no lane is on (each child loads and compiles for one implementation: lanes on
    different ones repeat nothing), else the one with the most units left."""
    waiting = [spec for spec, left in pending.items() if left]
    busy = {lane.spec for lane in active}
    free = [spec for spec in waiting if spec not in busy]
    return free[0] if free else max(waiting, key=lambda spec: len(pending[spec]), default=None)


def _next_unit(left: deque[int], units: Sequence[Unit], lane: _Lane, active: list[_Lane]) -> int:
    """The unit of ``left`` (its implementation's, in order) a lane takes: the first of the
    shapes its child has compiled, else the first of shapes no other lane on the
    implementation is on, else the first. So lanes compile apart, not the same shapes twice."""
    taken = {other.shapes for other in active if other is not lane and other.spec == lane.spec}
    index = next(
        (i for i in left if units[i].shapes == lane.shapes),
        next((i for i in left if units[i].shapes not in taken), left[0]),
    )
    left.remove(index)
    return index


class _Supervisor:
    def __init__(
        self,
        units: Sequence[Unit],
        options: dict,
        timeout: float,
        listener: Listener,
        directory: Path,
    ):
        self.context = multiprocessing.get_context("spawn")
        self.units, self.options, self.timeout = units, options, timeout
        self.listener, self.directory = listener, directory

    def receive(self, lane: _Lane) -> bool:
        """Handle every event the child has sent; False once its pipe is closed."""
        while lane.connection.poll():
            try:
                kind, payload = lane.connection.recv()
            except (EOFError, OSError):
                return False
            now = time.monotonic()
            if kind == STARTED:
                lane.case_started, lane.update, lane.examples = now, None, 0
                for case in lane.cases:
                    self.listener.case_started(lane.spec, case)
            elif kind == CALLING:
                lane.update, lane.update_started = payload, now
                lane.examples += 1
                self.listener.example_started(lane.spec, lane.cases[0], lane.examples)
            else:
                lane.unit, lane.update = None, None
                for result in payload:
                    self.listener.case_finished(lane.spec, CaseResult.from_dict(result))
        return True

    def ended(self, lane: _Lane) -> None:
        """The child's pipe closed: it died (in a unit, or between units)."""
        lane.reap()
        if lane.unit is not None:
            message = _death(lane.process.exitcode, lane.update is not None)
            self.finished(lane, lane.ended_results("crashed", message))

    def time_out(self, lane: _Lane) -> None:
        """Kill the child whose example ran past the timeout, after asking for its stack."""
        lane.ask_for_stack()
        lane.kill()
        message = (
            f"an example ran past the {self.timeout:g} s timeout (--timeout); the child process "
            "checking it was killed while running the update below"
        )
        self.finished(lane, lane.ended_results("timed-out", message))

    def finished(self, lane: _Lane, results: list[CaseResult]) -> None:
        for result in results:
            self.listener.case_finished(lane.spec, result)

    def run(self, pending: dict[str, deque[int]], jobs: int) -> None:
        """Check every pending unit (by implementation, in order) on at most ``jobs`` lanes."""
        active: list[_Lane] = []

        def next_unit(lane: _Lane) -> bool:
            """Hand the lane its implementation's next unit; False if it has none left."""
            if not pending[lane.spec]:
                return False
            lane.hand(_next_unit(pending[lane.spec], self.units, lane, active))
            return True

        try:
            while active or any(pending.values()):
                while len(active) < jobs and (spec := _next_spec(pending, active)):
                    lane = _Lane(spec, self.units)
                    lane.start(self.context, self.options, self.directory)
                    next_unit(lane)
                    active.append(lane)
                deadlines = [d for lane in active if (d := lane.deadline(self.timeout)) is not None]
                wait_for = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
                wait([lane.connection for lane in active], timeout=wait_for)
                for lane in list(active):
                    if not self.receive(lane):
                        self.ended(lane)
                    elif (d := lane.deadline(self.timeout)) and time.monotonic() >= d:
                        self.time_out(lane)
                    elif lane.unit is not None or next_unit(lane):
                        continue
                    else:
                        lane.stop()
                    active.remove(lane)
        finally:
            for lane in active:
                lane.kill()


def supervise(
    specs: Iterable[str],
    cases: Sequence[Case],
    listener: Listener,
    *,
    options: dict | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    jobs: int = 1,
) -> None:
    """Check each implementation (``MODULE:ATTR``) on ``cases`` in supervised children, at most
    ``jobs`` at once (lanes: one implementation's units spread over them), telling
    ``listener`` as events arrive (each unit's results as it finishes: in no fixed order).
    ``options`` are ``check``'s keyword arguments (profile, max_examples, constraints, ...);
    ``timeout`` is per example.
    On any exception (Ctrl-C's ``KeyboardInterrupt`` included) every child is killed first."""
    if timeout <= 0:
        raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
    grouped = units(cases)
    pending = {spec: deque(range(len(grouped))) for spec in specs}
    with tempfile.TemporaryDirectory(prefix="kvcache-check-") as directory:
        _Supervisor(grouped, options or {}, timeout, listener, Path(directory)).run(pending, jobs)
