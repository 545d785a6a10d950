import subprocess
import sys

import pytest

from lorakit.training import threads
from lorakit.training.threads import bound_openmp_spin, busy_cores, choose_threads


@pytest.mark.parametrize("cores, world, expected", [(2, 1, 2), (16, 1, 16), (16, 4, 4), (2, 4, 1)])
def test_a_quiet_machine_gets_each_process_its_share_of_the_cores(cores, world, expected):
    assert choose_threads(None, world, busy=0.0, cores=cores) == (expected, None)


def test_cores_busy_elsewhere_are_left_to_their_processes_with_a_warning_naming_the_override():
    n, warning = choose_threads(None, 1, busy=1.0, cores=2)
    assert n == 1
    assert "1 of 2 cores busy" in warning and "train.threads=2" in warning
    n, warning = choose_threads(None, 1, busy=3.2, cores=8)
    assert n == 5 and "train.threads=8" in warning


def test_a_fully_loaded_machine_still_trains_on_one_thread():
    n, warning = choose_threads(None, 1, busy=2.0, cores=2)
    assert n == 1 and "train.threads=2" in warning
    # one core, already in use: nothing to give back, but the user learns why it is slow
    n, warning = choose_threads(None, 1, busy=1.0, cores=1)
    assert n == 1 and "slow" in warning


def test_a_passing_blip_of_load_does_not_take_a_core_away():
    assert choose_threads(None, 1, busy=0.4, cores=2) == (2, None)


def test_the_other_processes_of_the_same_run_are_not_counted_as_load():
    # 2 processes on 8 cores, the sibling busy loading its model while this one samples
    assert choose_threads(None, 2, busy=1.0, cores=8) == (4, None)
    # beyond the siblings, a real load still counts
    n, warning = choose_threads(None, 2, busy=3.0, cores=8)
    assert n == 3 and "2 of 8 cores busy" in warning


def test_without_a_load_reading_the_share_is_used_silently(monkeypatch):
    monkeypatch.setattr(threads, "busy_cores", lambda: None)  # no /proc/stat (macOS, Windows)
    assert choose_threads(None, 2, cores=4) == (2, None)


def test_an_explicit_thread_count_is_kept_even_under_load():
    assert choose_threads(2, 1, busy=2.0, cores=2) == (2, None)
    n, warning = choose_threads(4, 1, busy=0.0, cores=2)
    assert n == 4 and "train.threads=2" in warning


def test_the_default_reads_the_machine_when_no_reading_is_given(monkeypatch):
    monkeypatch.setattr(threads, "busy_cores", lambda: 3.0)
    monkeypatch.setattr(threads, "usable_cores", lambda: 4)
    n, warning = choose_threads(None, 1)
    assert n == 1 and "3 of 4 cores busy" in warning


def test_busy_cores_is_a_share_of_this_process_cpus():
    busy = busy_cores(0.05)
    assert busy is None or 0.0 <= busy <= threads.usable_cores()


def test_the_spin_bound_is_set_only_before_torch_and_only_if_the_user_chose_nothing(monkeypatch):
    monkeypatch.delitem(sys.modules, "torch")
    env = {}
    assert bound_openmp_spin(env) is True
    assert env == {"GOMP_SPINCOUNT": str(threads.SPIN_COUNT)}
    for chosen in ({"OMP_WAIT_POLICY": "PASSIVE"}, {"GOMP_SPINCOUNT": "0"}):
        env = dict(chosen)
        assert bound_openmp_spin(env) is False and env == chosen
    monkeypatch.undo()  # torch is loaded again in sys.modules: too late for OpenMP settings
    env = {}
    assert bound_openmp_spin(env) is False and env == {}


def test_the_module_can_run_before_torch_is_imported():
    code = ("import sys, os\nfrom lorakit.training import threads\nassert 'torch' not in sys.modules\n"
            "os.environ.pop('OMP_WAIT_POLICY', None); os.environ.pop('GOMP_SPINCOUNT', None)\n"
            "assert threads.bound_openmp_spin()\nimport torch\nprint(os.environ['GOMP_SPINCOUNT'])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(threads.SPIN_COUNT)
