"""Grafana over the clapas store: `clapas grafana provision DIR` (issue 16).

Grafana reads PostgreSQL directly, so the charter is enforced in the database: Grafana's role reads only the
views of one schema (`views.py`), which hold the open and restricted rows (registry, hourly and daily rollups) and
never a personal one (a dwelling's meter, its readings, its registry fields); the role has no grant on the store's
own tables. The dashboards (`dashboards.py`), one per use, read those views.
"""
