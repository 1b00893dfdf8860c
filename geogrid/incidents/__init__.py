"""Command center: incident intake and cell assignment, workflow, deadlines, metrics."""
