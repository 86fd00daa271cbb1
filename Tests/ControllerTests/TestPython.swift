import Foundation

/// The Python that tests run to check output with a Python library (PyYAML):
/// `$PORTHOLE_PYTHON` (`make test` passes its `.venv`'s, made with Debian's own Python), else `python3` on `PATH`.
let testPython = ProcessInfo.processInfo.environment["PORTHOLE_PYTHON"] ?? "python3"
