"""Scripts beside the package: parity checks, the web app's browser driver,
benchmark and load test. A package so tests can import serve_browser."""
