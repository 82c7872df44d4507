"""Fault tests (marked slow): what the service survives.

* ``test_kill9.py`` — SIGKILL of the service during batch ingest and exchange jobs, and of
  ``quanguard mask`` mid-file: acknowledged work survives, no half-written output, the
  trail verifies after restart.
* ``test_db_and_disk.py`` — PostgreSQL dropping the service's connections under load
  (``pg_terminate_backend``; the shared server is not ours to restart), and a full disk
  (1 MB tmpfs, or RLIMIT_FSIZE) while ``mask`` and ``backup`` write.
* ``test_backup.py`` — backup/restore round trips, damaged archives, and a restored trail
  verified against exported checkpoints.

Elasticsearch stopped mid-stream (nothing lost, nothing duplicated) is covered by the
shipper's own test, ``tests/monitor/test_es_shipper.py::
test_outage_mid_stream_loses_and_duplicates_nothing``, and the search fallback while it is
down by ``tests/monitor/test_es_service.py::test_search_falls_back_to_sql_while_es_is_down``.
"""
