"""What the city sees: summaries of the store for the API and the dashboard (air, heat, floods, museum)."""
