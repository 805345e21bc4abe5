pytest_plugins = ["nf.testing.plugin"]
