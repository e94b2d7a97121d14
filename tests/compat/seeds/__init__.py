"""Example code from the seed notes, importing only from ``channels…`` names."""
