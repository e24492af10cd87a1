"""The parts of the benchmark harness (loadtests/harness.py): databases, the server, locust,
pgbench, the locust CPU watch, the report and the chart."""
