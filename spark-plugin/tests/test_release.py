"""What giving the executors back reports (sparkring.driver.executors.Release): pure logic."""

from sparkring.driver.executors import Release, release_executors


def test_all_gone_reports_the_time() -> None:
    assert Release(812.4, {}).line() == "executors released in 812 ms"


def test_executors_still_listed_are_named_with_their_hosts_and_the_setting_that_drops_them() -> None:
    line = Release(60031, {"1": "10.213.0.12:41234", "3": ""}).line()
    assert line == (
        "executors not all released after 60 s: executor 1 (10.213.0.12:41234), executor 3 still listed;"
        " Spark drops an executor it cannot reach after spark.network.timeout (120 s unless set)"
    )


def test_executors_this_session_cannot_give_back_say_who_will() -> None:
    left = Release(0, {}, left_to="left to the server's dynamic allocation")
    assert left.line() == "left to the server's dynamic allocation"
    assert left.released_ms is None


def test_executors_of_a_lost_host_are_named_but_not_waited_for() -> None:
    line = Release(240.0, {}, given_up=("2", "3")).line()
    assert line == (
        "executors released in 240 ms; not waited for: executors 2, 3 of a lost host, given up during the run"
        " (Spark lists them until spark.network.timeout)"
    )
    assert Release(240.0, {}, given_up=("2", "3")).released_ms == 240.0


class _FakeScheduler:
    """SparkContext's executor list as the JVM gives it: the killed ones go, those of a host that
    no longer answers stay listed."""

    def __init__(self, ids: list[str], unreachable: set[str], replacements: tuple[str, ...] = ()) -> None:
        self.ids = ids
        self.unreachable = unreachable
        self.replacements = list(replacements)  # register one by one after the first kill
        self.kills: list[list[str]] = []

    def getExecutorIds(self) -> list[str]:  # noqa: N802 - the JVM's name
        if self.kills and self.replacements:
            self.ids.append(self.replacements.pop(0))
        return list(self.ids)

    def killExecutors(self, ids: list[str]) -> None:  # noqa: N802 - the JVM's name
        self.kills.append(list(ids))
        self.ids = [i for i in self.ids if i in self.unreachable or i not in ids]

    def statusStore(self) -> None:  # noqa: N802 - the JVM's name
        raise RuntimeError("no status store in this fake")


class _FakeContext:
    def __init__(self, scheduler: _FakeScheduler) -> None:
        identity = lambda x: x  # noqa: E731
        self._jsc = type("Jsc", (), {"sc": lambda _self: scheduler})()
        self._jvm = type("Jvm", (), {})()
        self._jvm.scala = type("S", (), {})()
        self._jvm.scala.collection = type("C", (), {})()
        self._jvm.scala.collection.JavaConverters = type("J", (), {"seqAsJavaList": staticmethod(identity)})()
        self._jvm.PythonUtils = type("P", (), {"toSeq": staticmethod(identity)})()


def test_the_release_does_not_wait_for_executors_given_up_during_the_run() -> None:
    sc = _FakeContext(_FakeScheduler(["0", "1", "2", "3"], unreachable={"2", "3"}))
    release = release_executors(sc, timeout_s=30, given_up=frozenset({"2", "3"}))
    assert release is not None
    assert release.remaining == {}
    assert release.given_up == ("2", "3")
    assert release.ms < 5000


def test_replacements_that_register_during_the_release_are_killed_too() -> None:
    # The lost host came back (a link down for 3 s): Spark's replacements for its executors register late.
    scheduler = _FakeScheduler(["0", "1", "2", "3"], unreachable={"0", "1"}, replacements=("4", "5"))
    release = release_executors(_FakeContext(scheduler), timeout_s=30, given_up=frozenset({"0", "1"}))
    assert release is not None
    assert release.remaining == {}
    assert scheduler.kills[0] == ["0", "1", "2", "3"]
    assert sorted(i for kill in scheduler.kills[1:] for i in kill) == ["4", "5"]
    assert release.ms < 5000
