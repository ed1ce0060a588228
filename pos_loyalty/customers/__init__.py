"""Customers: enrolment, cards, profiles."""
