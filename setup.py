"""Maps the top-level folders into one import namespace.

`tools/`, `memory/`, `cli/` and `recipes/` install as `mmagent.tools`, `mmagent.memory`, ...
so nothing named `tools` or `memory` lands at the top of site-packages. Subpackages are found
here rather than listed by hand, so a new folder cannot be silently left out of a wheel.
"""

from setuptools import find_packages, setup

ROOTS = {
    "mmagent": "mmagent",
    "mmagent.tools": "tools",
    "mmagent.memory": "memory",
    "mmagent.cli": "cli",
    "mmagent.recipes": "recipes",
}

packages = []
for package, folder in ROOTS.items():
    packages.append(package)
    packages += [f"{package}.{sub}" for sub in find_packages(folder)]

setup(packages=packages, package_dir=ROOTS)
