"""Training and evaluation recipes: each a short script plus YAML configs."""
