"""Modality encoders: media -> features [B, N, D]."""
