#!/bin/sh
# Print a Python 3.13 interpreter: python3.13 on PATH (pyenv shims need
# PYENV_VERSION), then python3 if it is 3.13. Exit 1 with a message otherwise.
for candidate in python3.13 python3; do
    for env in "" "PYENV_VERSION=3.13.0"; do
        if env $env "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' >/dev/null 2>&1; then
            if [ -n "$env" ]; then echo "env $env $candidate"; else command -v "$candidate"; fi
            exit 0
        fi
    done
done
echo "No Python 3.13 found: install it or run make PYTHON=/path/to/python3.13" >&2
exit 1
