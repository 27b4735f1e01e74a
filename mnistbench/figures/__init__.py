"""The figures: one module per figure, each drawing from a table its data function returns."""
