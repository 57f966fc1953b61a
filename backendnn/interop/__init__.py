"""Leaving the library: conversions between backendnn networks and other frameworks' models."""
