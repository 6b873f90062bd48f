#!/bin/sh
# Stand-in for the project the constrained VM builds; the demo's document lists the artifact.
echo "building $(basename "$(pwd)")"
