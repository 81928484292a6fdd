#!/bin/sh
set -e
echo portal_install.sh
