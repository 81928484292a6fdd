#!/bin/sh
set -e
echo "configured for $CITY"
