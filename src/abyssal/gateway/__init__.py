"""The edge: parse, authenticate and translate client requests; no business rules live here."""
