"""Operating the service: drain (intake on/off), and what the operators read (metrics)."""
