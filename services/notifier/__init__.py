"""The notifier: acknowledges a receipt by e-mail and issues tasks for the desk's operators."""
