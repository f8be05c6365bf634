# The Airflow image with this project's pinned stack and the `ruralwatch` package.
FROM apache/airflow:3.3.2-python3.11
USER airflow
COPY --chown=airflow:root requirements.lock /opt/ruralwatch/requirements.lock
RUN pip install --no-cache-dir -r /opt/ruralwatch/requirements.lock
COPY --chown=airflow:root pyproject.toml /opt/ruralwatch/pyproject.toml
COPY --chown=airflow:root include /opt/ruralwatch/include
RUN pip install --no-cache-dir --no-deps --no-build-isolation -e /opt/ruralwatch
ENV RURALWATCH_HOME=/opt/ruralwatch
WORKDIR /opt/ruralwatch
