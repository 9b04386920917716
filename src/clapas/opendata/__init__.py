"""Open data (issue 11): the city's datasets, their exports (CSV, French CSV, GeoJSON, Parquet, streamed) and the
DCAT-AP catalogue that describes them. Everything served goes through the data charter (`source.ExportView`)."""
