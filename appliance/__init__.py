"""Tandem: an on-premise appliance that keeps work items in step between apps."""

__version__ = "0.1.0"
