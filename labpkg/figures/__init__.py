"""Figures and explorers (matplotlib, kernel-free HTML/JS); the loop never imports them."""
