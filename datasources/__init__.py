"""Dataset adapters (real formats and the toy world) behind one interface, with class metadata."""
