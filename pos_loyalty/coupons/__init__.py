"""Coupons: typable codes with a check character, QR forms with a MAC, atomic redemption."""
