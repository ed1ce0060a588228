"""RFM segments and the purchase history personal offers are chosen from."""
