"""Commercial banks: their channels and how they route customers' payments (行内, HVPS, BEPS,
IBPS)."""
