"""Real devices at a lane: camera, serial scanner, ESC/POS printer, and their manager."""
