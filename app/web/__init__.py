"""The browser pages served at /ui/: the list of applications and the live log viewer."""
