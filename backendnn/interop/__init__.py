"""Leaving the library: exporting fitted models to other runtimes and frameworks."""
