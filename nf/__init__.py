"""xdp-nf: XDP network functions with an eNetSTL-style kfunc module."""

# The one place the version lives: pyproject.toml reads it (dynamic version), the wheel's
# BUILD.json and the DKMS package of the module (make -C kmod dkms-install) take it from here.
__version__ = "0.1.0"
