"""Planners' domain: grid boundaries and their hierarchy."""
