"""Bare-metal firmware projects the SDK fills in and builds (package data, no Python code)."""
