"""Folium map builders for the three users' pages (no Flask here: the pages are in geogrid.api.maps)."""
