"""Figures people read off screens and metrics: a day's sales, a customer's coupons."""
