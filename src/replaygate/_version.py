"""The version, in a leaf module that every layer may import without importing the package."""

__version__ = "0.1.0"
