"""Simulated store hardware speaking the real wire protocols.

This package is hardware: it imports nothing of the project. It speaks bytes (ESC/POS over TCP or a
pseudo-terminal, serial scanner frames on a pseudo-terminal) and pixels (camera frames).
"""
