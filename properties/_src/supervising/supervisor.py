"""Check implementations in child processes the parent watches, so the harness survives what
it checks.

Each implementation's cases run in a child process (spawned: JAX is not fork-safe) that
streams events over a pipe: a case started, an update about to be run, a case finished with
its result. So the parent always knows the update in flight. A child that dies (a segfault in
a native kernel, an ``os._exit``) gives status ``crashed`` for the case it was in; one whose
current example runs past the timeout is killed and gives ``timed-out``; either way the
update it was running is the counterexample, and the implementation's remaining cases go on
in a fresh child. Other implementations, in children of their own, are unaffected.

On a crash or a timeout the counterexample also shows where the child was (its Python stack,
written by ``faulthandler`` as it died, or on request just before a hung child is killed).
The timeout applies while an update is in flight: the implementation's own code runs only then
(its module was imported by the parent already, to check that it loads).
"""

from __future__ import annotations

import faulthandler
import logging
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
from properties._src.cases.catalog import CASES, MESH_CASES, Case
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

# What a child sends: (STARTED, case id), (CALLING, update), (FINISHED, CaseResult.to_dict()).
STARTED, CALLING, FINISHED = "started", "calling", "finished"


class Listener(Protocol):
    """What the parent reports as the children's events arrive."""

    def case_started(self, name: str, case: Case) -> None: ...

    def example_started(self, name: str, case: Case, examples: int) -> None: ...

    def case_finished(self, name: str, result: CaseResult) -> None: ...


def _child(
    connection: Connection, spec: str, case_ids: list[str], options: dict, stack_file: str
) -> None:
    """A child's work: check ``spec`` on each case in turn, reporting as it goes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's; it ends the children
    with open(stack_file, "w") as stack:  # open until the child ends, for faulthandler
        faulthandler.enable(stack)
        faulthandler.register(signal.SIGUSR1, stack)
        # A kernel that fails in the TPU interpreter logs the traceback; the report says it shorter.
        logging.getLogger("jax._src.callback").setLevel(logging.CRITICAL)
        compilation_cache.enable()  # JAX's settings are per process
        if options.get("mesh"):  # before the implementation's import can start JAX
            ensure_cpu_devices(MeshShape.parse(options["mesh"]).devices)
        implementation = load(spec)
        by_id = {case.id: case for case in CASES + MESH_CASES}
        for case_id in case_ids:
            connection.send((STARTED, case_id))
            [result] = check(
                implementation,
                cases=(by_id[case_id],),
                before_call=lambda update: connection.send((CALLING, update)),
                **options,
            ).results
            connection.send((FINISHED, result.to_dict()))
    connection.close()


class _Checking:
    """One implementation's cases, checked in one child after another."""

    process: BaseProcess  # these three belong to the current child, set by ``start``
    connection: Connection
    stack_file: Path
    mesh: str | None

    def __init__(self, spec: str, cases: Iterable[Case]):
        self.spec = spec
        self.remaining = deque(cases)
        self.case_started: float | None = None  # the case in flight is remaining[0] once started
        self.update: Update | None = None
        self.update_started = 0.0
        self.examples = 0

    def start(self, context, options: dict, directory: Path) -> None:
        """A fresh child for the remaining cases."""
        descriptor, name = tempfile.mkstemp(suffix=".stack", dir=directory)
        os.close(descriptor)
        self.stack_file = Path(name)
        self.mesh = options.get("mesh")  # for the snippet of a crash's counterexample
        receiver, sender = context.Pipe(duplex=False)
        self.process = context.Process(
            target=_child,
            args=(sender, self.spec, [c.id for c in self.remaining], options, str(self.stack_file)),
            name=f"kvcache-check {self.spec}",
            daemon=True,
        )
        self.process.start()
        sender.close()  # the child holds the only writer: its death is our end of file
        self.connection = receiver
        self.case_started, self.update, self.examples = None, None, 0

    def deadline(self, timeout: float) -> float | None:
        """When the example in flight times out (``None``: no example in flight)."""
        return None if self.update is None else self.update_started + timeout

    def kill(self) -> None:
        """End the child now."""
        if self.process.is_alive():
            self.process.kill()
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

    def ended_result(self, status: str, message: str) -> CaseResult:
        """The result of the case in flight (or next) when its child ended abnormally."""
        case = self.remaining.popleft()
        where = self.stack()
        if where:
            message += f"\nwhere (innermost first):\n{where}"
        if self.update is not None:
            prop = getattr(case, "prop", MATCHES_ORACLE)  # a sequence case checks the oracle
            failure = Failure(self.update, None, message, prop=prop.name)
            text = render(self.spec, failure, mesh=self.mesh)
        else:
            text = message
        seconds = 0.0 if self.case_started is None else time.monotonic() - self.case_started
        result = CaseResult(
            property=case.name,
            tier=case.tier.name.lower(),
            status=status,
            examples=self.examples,
            seconds=round(seconds, 3),
            counterexample=text,
        )
        self.case_started, self.update, self.examples = None, None, 0
        return result


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


class _Supervisor:
    def __init__(self, options: dict, timeout: float, listener: Listener, directory: Path):
        self.context = multiprocessing.get_context("spawn")
        self.options, self.timeout, self.listener = options, timeout, listener
        self.directory = directory

    def receive(self, checking: _Checking) -> bool:
        """Handle every event the child has sent; False once its pipe is closed."""
        while checking.connection.poll():
            try:
                kind, payload = checking.connection.recv()
            except (EOFError, OSError):
                return False
            now = time.monotonic()
            if kind == STARTED:
                checking.case_started, checking.update, checking.examples = now, None, 0
                self.listener.case_started(checking.spec, checking.remaining[0])
            elif kind == CALLING:
                checking.update, checking.update_started = payload, now
                checking.examples += 1
                self.listener.example_started(
                    checking.spec, checking.remaining[0], checking.examples
                )
            else:
                checking.remaining.popleft()
                checking.case_started, checking.update, checking.examples = None, None, 0
                self.listener.case_finished(checking.spec, CaseResult.from_dict(payload))
        return True

    def ended(self, checking: _Checking) -> None:
        """The child's pipe closed: it finished, or it died in a case."""
        checking.reap()
        if checking.remaining:
            message = _death(checking.process.exitcode, checking.update is not None)
            self.listener.case_finished(checking.spec, checking.ended_result("crashed", message))

    def time_out(self, checking: _Checking) -> None:
        """Kill the child whose example ran past the timeout, after asking for its stack."""
        checking.ask_for_stack()
        checking.kill()
        message = (
            f"an example ran past the {self.timeout:g} s timeout (--timeout); the child process "
            "checking it was killed while running the update below"
        )
        self.listener.case_finished(checking.spec, checking.ended_result("timed-out", message))

    def run(self, pending: deque[_Checking], jobs: int) -> None:
        active: list[_Checking] = []
        try:
            while pending or active:
                while pending and len(active) < jobs:
                    checking = pending.popleft()
                    checking.start(self.context, self.options, self.directory)
                    active.append(checking)
                deadlines = [d for c in active if (d := c.deadline(self.timeout)) is not None]
                wait_for = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
                wait([c.connection for c in active], timeout=wait_for)
                for checking in list(active):
                    if not self.receive(checking):
                        self.ended(checking)
                    elif (d := checking.deadline(self.timeout)) and time.monotonic() >= d:
                        self.time_out(checking)
                    else:
                        continue
                    if checking.remaining:
                        checking.start(self.context, self.options, self.directory)
                    else:
                        active.remove(checking)
        finally:
            for checking in active:
                checking.kill()


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
    ``jobs`` at once, telling ``listener`` as events arrive. ``options`` are ``check``'s
    keyword arguments (profile, max_examples, constraints, ...); ``timeout`` is per example.
    On any exception (Ctrl-C's ``KeyboardInterrupt`` included) every child is killed first."""
    if timeout <= 0:
        raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
    pending = deque(_Checking(spec, cases) for spec in specs)
    with tempfile.TemporaryDirectory(prefix="kvcache-check-") as directory:
        _Supervisor(options or {}, timeout, listener, Path(directory)).run(pending, jobs)
