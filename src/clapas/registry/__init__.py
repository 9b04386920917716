"""The device registry and the city's zones: CSV and GeoJSON in and out."""
