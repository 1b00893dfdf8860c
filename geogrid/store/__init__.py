"""The database: embedded PostGIS, schema, migrations; the only place that opens connections."""
