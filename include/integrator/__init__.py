"""The integrator protocol: the reference archive service (Saklama API) and its client.

Imports include.edefter, never Airflow.
"""
