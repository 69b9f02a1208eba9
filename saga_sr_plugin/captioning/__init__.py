"""Offline captions for training and inference: Qwen2-Audio over folders, written to caption sidecars."""
