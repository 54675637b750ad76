"""What giving the executors back reports (sparkring.driver.executors.Release): pure logic."""

from sparkring.driver.executors import Release


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
