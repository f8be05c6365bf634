"""`ruralwatch run`, backfill, bench and the demo keep Airflow's and dbt's output in a log file."""
from __future__ import annotations

import logging
import os
import sys


def test_task_output_goes_to_the_file_and_the_stream_outlives_the_run(tmp_path, capsys, monkeypatch):
    from ruralwatch.orchestration.runner import task_logs_to

    monkeypatch.setenv("AIRFLOW__LOGGING__LOGGING_LEVEL",
                       os.environ.get("AIRFLOW__LOGGING__LOGGING_LEVEL", "INFO"))
    log_file = tmp_path / "logs" / "run-202610-202611.log"
    handlers_before = logging.getLogger().handlers[:]
    with task_logs_to(log_file):
        print("task chatter of the first month")
        logging.getLogger("airflow.task").warning("a task warning")
        kept = sys.stdout  # what Airflow's loggers hold on to once configured
    with task_logs_to(log_file):
        print("task chatter of the second month")
    # A logger that kept the first month's stream still writes: the second month of a range used to
    # fail here with "I/O operation on closed file".
    kept.write("a late line\n")
    kept.flush()
    text = log_file.read_text(encoding="utf-8")
    for line in ("task chatter of the first month", "a task warning", "task chatter of the second month",
                 "a late line"):
        assert line in text
    assert "task chatter" not in capsys.readouterr().out
    assert logging.getLogger().handlers == handlers_before
