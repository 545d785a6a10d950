"""How many CPU threads training uses, and how long they spin: so a shared CPU slows training down
instead of collapsing it.

torch runs its CPU ops on an OpenMP thread team (libgomp in the CPU builds: see
``torch.__config__.parallel_info()``). At the end of every parallel op a thread that has finished
its share spins, burning its core, until the others arrive. When other processes are busy on the
same cores, the thread it waits for is often descheduled, so the spinning thread uses up time slices
that the late thread needed. Training then runs several times slower than on fewer threads
(benchmarks/README.md, "threads.py", has the figures). Two remedies, used together:

- ``bound_openmp_spin()``: make a waiting thread go to sleep after a short spin. It must run before
  torch is imported (OpenMP reads its settings once, when the library loads): first thing in the
  command line's ``main``.
- ``choose_threads()``: by default, start with as many threads as there are cores that other
  processes leave free, and say so with the option that changes it.
"""

import os
import sys
import time

SPIN_COUNT = 10_000
"""Spin iterations before a waiting OpenMP thread sleeps (libgomp's default is 300,000). Short enough
that waiting on a descheduled partner does not use up the time slice it needs, long enough that a
quiet machine keeps its speed."""

SAMPLE_SECONDS = 0.1
"""How long the other processes' CPU use is sampled before training starts."""


def bound_openmp_spin(environ=os.environ) -> bool:
    """Limit how long OpenMP threads spin-wait, unless the user chose a wait policy; True if set.

    Has no effect once torch is loaded in this process, so it does nothing then (returns False).
    Processes started from this one (torchrun workers) inherit the setting.
    """
    if "torch" in sys.modules or "OMP_WAIT_POLICY" in environ or "GOMP_SPINCOUNT" in environ:
        return False
    environ["GOMP_SPINCOUNT"] = str(SPIN_COUNT)
    return True


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity: taskset, a container's cpuset)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _cpu_ticks(cpus: set[int]) -> tuple[int, int]:
    """(busy, total) clock ticks of the given CPUs since boot, from /proc/stat."""
    busy = total = 0
    for line in open("/proc/stat"):
        name, *fields = line.split()
        if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus:
            ticks = [int(f) for f in fields[:8]]  # user nice system idle iowait irq softirq steal
            total += sum(ticks)
            busy += sum(ticks) - ticks[3] - ticks[4]
    return busy, total


def busy_cores(seconds: float = SAMPLE_SECONDS) -> float | None:
    """Cores kept busy by other processes, on average over ``seconds`` (None where /proc is missing).

    Counts only the CPUs this process may use, and leaves out this process's own CPU time.
    """
    cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
    try:
        (busy0, total0), own0 = _cpu_ticks(cpus), os.times()
        time.sleep(seconds)
        (busy1, total1), own1 = _cpu_ticks(cpus), os.times()
    except (OSError, ValueError):
        return None
    if total1 <= total0:
        return None
    tick = 1 / os.sysconf("SC_CLK_TCK")
    own = (own1.user + own1.system - own0.user - own0.system) / tick
    return max(0.0, (busy1 - busy0 - own) / (total1 - total0) * len(cpus))


def choose_threads(requested: int | None, world: int, busy: float | None = None,
                   cores: int | None = None) -> tuple[int, str | None]:
    """Threads for each of ``world`` training processes on this machine, and a one-line warning when
    the choice is not all of this process's share of the cores, or that share is already in use.

    ``requested`` (train.threads) is used as given. Otherwise each process gets its share of the
    cores that other processes leave free (at least one thread). ``busy`` and ``cores`` default to
    ``busy_cores()`` and ``usable_cores()``; tests pass them in.
    """
    cores = usable_cores() if cores is None else cores
    share = max(1, cores // world)
    if requested is not None:
        if requested > share:
            return requested, (f"train.threads={requested} is more than this process's {share} of {cores} cores: "
                               f"threads wait on each other; train.threads={share} is usually faster")
        return requested, None
    busy = busy_cores() if busy is None else busy
    if busy is None:
        return share, None
    # The other processes of this run may be busy starting up too: they are not someone else's load.
    others = round(max(0.0, busy - (world - 1)))
    threads = max(1, min(share, (cores - others) // world))
    if threads < share:
        return threads, (f"other processes keep {others} of {cores} cores busy: training on {threads} "
                         f"thread{'s' * (threads > 1)}; train.threads={share} uses all of them anyway")
    if others and others + world * threads > cores:
        return threads, (f"other processes keep {others} of {cores} cores busy: training shares its cores "
                         f"and will be slow, even with train.threads={threads}")
    return threads, None
