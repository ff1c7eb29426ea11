"""CNAPS, the PBOC's payment systems: HVPS gross settlement, its queue and gridlock resolution."""
