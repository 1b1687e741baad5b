"""The ``taskwheel`` command line (`taskwheel.cli.main`). Only this package prints."""
