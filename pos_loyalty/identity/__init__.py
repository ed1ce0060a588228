"""Identification: phone numbers, loyalty cards (barcode or stripe) and loyalty QR codes."""
