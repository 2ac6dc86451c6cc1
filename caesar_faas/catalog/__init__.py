"""Source catalogues: the normalised schema shared by every finder."""
