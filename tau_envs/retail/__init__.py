"""The retail domain: tools over orders, products and users."""
