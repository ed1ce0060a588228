"""The operator's audit log: who (which API key or CLI user) did what to whose data, and when."""
