"""The airline domain: tools over flights, reservations and users."""
