"""Meterflow: an open-source smart-meter data platform that runs on AWS and on one laptop."""

__version__ = "0.1.0"
