# e-Defter Yedekleme image: the official Airflow 3.3.2 image plus this project's pinned dependencies
# and code. The same image runs every Airflow component and the reference integrator service.
FROM apache/airflow:3.3.2

# requirements.txt lists apache-airflow==3.3.2 itself, so pip keeps the image's Airflow and only adds
# what is missing; constraints.txt pins the full set verified on the development machines (Airflow's
# own constraint files are not reachable from the build hosts we test on).
# xmllint (libxml2-utils) streams large ledger parts through GİB's XSD with bounded memory
# (include/edefter/xsd.py); without it the slower lxml fallback is used, without line numbers.
USER root
RUN apt-get update && apt-get install -y --no-install-recommends libxml2-utils && rm -rf /var/lib/apt/lists/*
USER airflow
COPY --chown=airflow:0 requirements.txt constraints.txt /opt/airflow/project/
RUN pip install --no-cache-dir -r /opt/airflow/project/requirements.txt -c /opt/airflow/project/constraints.txt

# The project root goes on PYTHONPATH everywhere: `from include.edefter import ...`.
COPY --chown=airflow:0 include /opt/airflow/project/include
COPY --chown=airflow:0 dags /opt/airflow/dags
COPY --chown=airflow:0 plugins /opt/airflow/plugins
ENV PYTHONPATH=/opt/airflow/project \
    EDEFTER_COMPANIES_FILE=/opt/airflow/project/include/config/companies.yaml \
    EDEFTER_WORK_DIR=/opt/airflow/work \
    EDEFTER_EVIDENCE_DIR=/opt/airflow/evidence
