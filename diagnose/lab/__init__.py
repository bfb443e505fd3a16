"""The built-in sealed lab: a Docker-like host, containers and a fake internet in namespaces."""
