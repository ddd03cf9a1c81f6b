"""Pure tus protocol rules: parsing and decisions over plain values, no I/O."""
