"""What every payhara-desk service shares: settings, event contracts, topology, outbox and inbox."""
