"""Every ruralwatch Airflow DAG, made from the feed registry (include/ruralwatch/feeds/registry.yml).

Thin on purpose: the factory and the task logic live in the `ruralwatch` package. (Airflow's DAG
processor only parses files that mention both "airflow" and "dag", as this docstring does.)
"""
from ruralwatch.orchestration.factory import build_all_dags

globals().update(build_all_dags())
