"""Card switch (CUPS-style): ISO 8583 messages and TCP framing."""
