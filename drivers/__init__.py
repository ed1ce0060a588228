"""Real devices at a lane: camera, serial scanner, ESC/POS printer, and the manager that runs them."""
