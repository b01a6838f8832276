"""Personal data at rest: encryption, encrypted model fields, their columns and checks."""
