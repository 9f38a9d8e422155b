"""The scheduler: books each confirmed consultation into a callback slot on a business day."""
