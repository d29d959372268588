"""The FAISS multimodal memory: embedders, index, SQLite metadata store."""
