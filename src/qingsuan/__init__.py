"""Qingsuan (清算): a deterministic working model of China's interbank payment system."""

__version__ = "0.1.0"
