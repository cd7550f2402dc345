"""Human preference study (paper App. A.3): serve anonymized pairs, store votes, score them."""
